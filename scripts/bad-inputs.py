#!/usr/bin/env python3
"""Bad inputs tried: schemathesis drives every operation of Meridian's OpenAPI document (every
service's, as `meridian dev` serves them together) with all its checks on, including the
authorisation checks, and its stateful phase. The figures go to REPORTS/bad-inputs.json.

Usage: bad-inputs.py MERIDIAN_BINARY SCHEMATHESIS_CLI REPORTS_DIR [EXAMPLES]

It fails on any server error, any response outside the document (status, content type, headers,
body), any wrong answer to an undeclared method, any operation answering without authentication,
any invalid request accepted, and a server that dies. Schema-valid requests that the handlers
refuse (the handlers check more than the document says, such as a window's end after its start)
are counted and listed, not failed.
"""
import collections
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# Failing checks; `positive_data_acceptance` is reported only.
REPORTED_ONLY = {"positive_data_acceptance"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    binary, cli = (str(pathlib.Path(p).resolve()) for p in sys.argv[1:3])
    reports = pathlib.Path(sys.argv[3]).resolve()
    examples = sys.argv[4] if len(sys.argv) > 4 else "10"
    reports.mkdir(parents=True, exist_ok=True)
    data = tempfile.mkdtemp(prefix="meridian-bad-inputs-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(reports / "bad-inputs-server.log", "w")
    server = subprocess.Popen(
        [binary, "dev", "--data", data, "--bind", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/v1/openapi.json", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            print("bad inputs: meridian dev did not answer", file=sys.stderr)
            return 1
        token = subprocess.check_output(
            [binary, "token", "--data", data, "--sub", "schemathesis", "--roles", "admin"],
            text=True,
        ).split()[-1]
        events = reports / "bad-inputs.ndjson"
        subprocess.run(
            [cli, "--config-file", str(pathlib.Path(__file__).with_name("schemathesis.toml")),
             "run", f"{base}/v1/openapi.json", "--checks", "all",
             "--header", f"Authorization: Bearer {token}",
             "--max-examples", examples, "--workers", "2", "--generation-deterministic",
             "--report", "ndjson", "--report-ndjson-path", str(events.resolve())],
            cwd=data,
            stdout=open(reports / "bad-inputs-schemathesis.txt", "w"),
            stderr=subprocess.STDOUT,
            check=False,
        )
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)

    if not events.exists():
        print(f"bad inputs: schemathesis wrote no events; see {reports / 'bad-inputs-schemathesis.txt'}",
              file=sys.stderr)
        return 1
    failures = collections.defaultdict(dict)
    operations, cases, requests, errors = 0, 0, 0, []
    for line in events.read_text().splitlines():
        event = json.loads(line)
        (kind, body), = event.items()
        if kind == "LoadingFinished":
            total = body.get("statistic", {}).get("operations", {}).get("total")
            if total:
                operations = total
        if kind == "NonFatalError":
            errors.append(body["value"].get("message", "")[:300])
        if kind != "ScenarioFinished":
            continue
        recorder = body.get("recorder", {})
        cases += len(recorder.get("cases", {}))
        requests += len(recorder.get("interactions", {}))
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                info = check.get("failure_info")
                if info:
                    failure = info.get("failure", {})
                    message = (failure.get("message") or "").replace("\n", " ")[:300]
                    failures[check["name"]].setdefault(failure.get("operation") or "?", message)
    server_errors = len(failures.get("not_a_server_error", {}))
    failing = {k: v for k, v in failures.items() if k not in REPORTED_ONLY}
    report = {
        "operations": operations,
        "test_cases": cases,
        "requests": requests,
        "server_errors": server_errors,
        "server_alive": alive,
        "failing_checks": {k: len(v) for k, v in failing.items()},
        "failures": sum(len(v) for v in failing.values()),
        "reported_only": {k: len(failures.get(k, {})) for k in REPORTED_ONLY},
        "detail": failures,
        "errors": errors,
    }
    (reports / "bad-inputs.json").write_text(json.dumps(report, indent=1))
    return 0 if alive and not failing else 1


if __name__ == "__main__":
    sys.exit(main())
