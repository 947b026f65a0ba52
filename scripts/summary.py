#!/usr/bin/env python3
"""The summary lines of `make test`, taken from the reports the suites wrote (never by hand).

Usage: summary.py REPORTS_DIR [--require]
With --require (the whole suite ran), a missing report is a failure.
"""
import json
import pathlib
import sys


def main() -> int:
    reports = pathlib.Path(sys.argv[1])
    require = "--require" in sys.argv[2:]
    failed = False
    attacks = reports / "attacks.json"
    if attacks.exists():
        report = json.loads(attacks.read_text())
        print(
            f"attacks tried: {report['classes']} classes, {report['attempts']} attempts, "
            f"{report['accepted']} accepted"
        )
        if report["accepted"]:
            failed = True
            for c in report["detail"]:
                for how in c["how"]:
                    print(f"  accepted: {c['class']}: {how}", file=sys.stderr)
    elif require:
        print(f"no attack report in {reports}", file=sys.stderr)
        failed = True
    load = reports / "load.json"
    if load.exists():
        r = json.loads(load.read_text())
        rss = r["peak_rss_mib"]
        print(
            f"load held: {r['rate']} req/s for {r['seconds']} s, {r['errors']} errors, "
            f"p99 {r['p99_ms']} ms (p50 {r['p50_ms']} ms), peak RSS resolution {rss['resolution']} MiB, "
            f"control {rss['control']} MiB, workflow {rss['workflow']} MiB; above capacity "
            f"{r['above_capacity']['shed_with_retry_after']} of {r['above_capacity']['requests']} shed with "
            f"Retry-After, {r['above_capacity']['other']} otherwise"
        )
        if r["errors"] or r["above_capacity"]["other"]:
            failed = True
    elif require:
        print(f"no load report in {reports}", file=sys.stderr)
        failed = True
    bad = reports / "bad-inputs.json"
    if bad.exists():
        r = json.loads(bad.read_text())
        print(
            f"bad inputs tried: {r['requests']} requests over {r['operations']} operations, "
            f"{r['server_errors']} server errors, {r['failures']} other failures "
            f"(responses outside the schema, undeclared methods, authorisation, invalid input accepted); "
            f"{r['reported_only']['positive_data_acceptance']} operations whose handlers check more than the document says"
        )
        if r["failures"] or r["server_errors"] or not r["server_alive"]:
            failed = True
            for check, operations in r["detail"].items():
                if check != "positive_data_acceptance":
                    for operation, message in operations.items():
                        print(f"  {check}: {operation}: {message}", file=sys.stderr)
    elif require:
        print(f"no bad-input report in {reports}", file=sys.stderr)
        failed = True
    fuzz = reports / "fuzz.json"
    if fuzz.exists():
        r = json.loads(fuzz.read_text())
        names = ", ".join(t["target"] for t in r["targets"])
        print(f"fuzzed: {len(r['targets'])} targets ({names}), {r['inputs']} inputs, {r['crashes']} crashes")
        if r["crashes"]:
            failed = True
    elif require:
        print(f"no fuzz report in {reports}", file=sys.stderr)
        failed = True
    faults = reports / "faults.json"
    if faults.exists():
        r = json.loads(faults.read_text())
        print(
            f"faults survived: {len(r['faults'])} injected under load "
            f"({r['store_faults_injected']} store faults besides), "
            f"{r['acknowledged']['incidents'] + r['acknowledged']['changes_submitted'] + r['acknowledged']['decisions']} "
            f"operations acknowledged; lost {r['lost']}, duplicated {r['duplicated']}, stuck {r['stuck']}, "
            f"undrained {r['undrained']}, ledger {'intact' if r['ledger_intact'] else 'BROKEN'}, "
            f"{r['server_errors']} server errors other than 503"
        )
        if r["server_errors"] or r["lost"] or r["duplicated"] or r["stuck"] or r["undrained"] or not r["ledger_intact"]:
            failed = True
    elif require:
        print(f"no fault report in {reports}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
