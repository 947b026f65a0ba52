#!/usr/bin/env python3
"""The summary lines of `make test`, taken from the reports the suites wrote (never by hand).

Usage: summary.py REPORTS_DIR [--require]
With --require (the whole suite ran), a missing report is a failure.
"""
import json
import pathlib
import sys


def attacks(r):
    line = f"attacks tried: {r['classes']} classes, {r['attempts']} attempts, {r['accepted']} accepted"
    details = [f"accepted: {c['class']}: {how}" for c in r["detail"] for how in c["how"]]
    return line, bool(r["accepted"]), details


def load(r):
    rss = r["peak_rss_mib"]
    above = r["above_capacity"]
    line = (
        f"load held: {r['rate']} req/s for {r['seconds']} s, {r['errors']} errors, "
        f"p99 {r['p99_ms']} ms (p50 {r['p50_ms']} ms), peak RSS resolution {rss['resolution']} MiB, "
        f"control {rss['control']} MiB, workflow {rss['workflow']} MiB; above capacity "
        f"{above['shed_with_retry_after']} of {above['requests']} shed with Retry-After, {above['other']} otherwise"
    )
    return line, bool(r["errors"] or above["other"]), []


def bad_inputs(r):
    line = (
        f"bad inputs tried: {r['requests']} requests over {r['operations']} operations, "
        f"{r['server_errors']} server errors, {r['failures']} other failures "
        f"(responses outside the schema, undeclared methods, authorisation, invalid input accepted); "
        f"{r['reported_only']['positive_data_acceptance']} operations whose handlers check more than the document says"
    )
    details = [
        f"{check}: {operation}: {message}"
        for check, operations in r["detail"].items()
        if check != "positive_data_acceptance"
        for operation, message in operations.items()
    ]
    return line, bool(r["failures"] or r["server_errors"] or not r["server_alive"]), details


def fuzz(r):
    names = ", ".join(t["target"] for t in r["targets"])
    line = f"fuzzed: {len(r['targets'])} targets ({names}), {r['inputs']} inputs, {r['crashes']} crashes"
    return line, bool(r["crashes"]), []


def faults(r):
    acknowledged = sum(r["acknowledged"][k] for k in ("incidents", "changes_submitted", "decisions"))
    line = (
        f"faults survived: {len(r['faults'])} injected under load "
        f"({r['store_faults_injected']} store faults besides), {acknowledged} operations acknowledged; "
        f"lost {r['lost']}, duplicated {r['duplicated']}, stuck {r['stuck']}, undrained {r['undrained']}, "
        f"ledger {'intact' if r['ledger_intact'] else 'BROKEN'}, {r['server_errors']} server errors other than 503"
    )
    bad = r["server_errors"] or r["lost"] or r["duplicated"] or r["stuck"] or r["undrained"] or not r["ledger_intact"]
    return line, bool(bad), []


def console(r):
    passed = r["scenarios"] - r["failed"]
    line = (
        f"console: {passed} of {r['scenarios']} scenarios passed in {r['browser']} "
        f"(screenshots in {r['screenshots']})"
    )
    details = [f"{x['name']}: {x['error'].splitlines()[0]}" for x in r["results"] if not x["ok"]]
    return line, bool(r["failed"]) or not r["scenarios"], details


# Report file, what it is, and how to read it: (line, failed, details).
REPORTS = [
    ("attacks.json", "attack", attacks),
    ("load.json", "load", load),
    ("bad-inputs.json", "bad-input", bad_inputs),
    ("fuzz.json", "fuzz", fuzz),
    ("faults.json", "fault", faults),
    ("console.json", "console", console),
]


def main() -> int:
    reports = pathlib.Path(sys.argv[1])
    require = "--require" in sys.argv[2:]
    failed = False
    for name, what, read in REPORTS:
        path = reports / name
        if not path.exists():
            if require:
                print(f"no {what} report in {reports}", file=sys.stderr)
                failed = True
            continue
        line, bad, details = read(json.loads(path.read_text()))
        print(line)
        for detail in details:
            print(f"  {detail}", file=sys.stderr)
        failed = failed or bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
