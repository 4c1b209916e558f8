"""How far `.ci/fuzz.sh`'s generated calls got: one row per operation of the OpenAPI
document with its calls, those answered 2xx, and those of them sent by the stateful phase
(the chains that follow the document's links).

    python3 .ci/fuzz_report.py EVENTS.ndjson OPENAPI.json

EVENTS is schemathesis's `--report ndjson` file: each finished scenario carries its cases
(method, path template, phase) and their responses. Calls on a documented path with a
method it does not have (schemathesis's `unsupported_method` probes) are counted on one
line of their own. Only prints: the run's verdict is schemathesis's exit code.
"""

import json
import sys
from collections import Counter

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def main(events_path: str, document_path: str) -> None:
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    operations = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                operations[(method.upper(), path)] = operation.get("operationId", "")

    calls, ok, stateful_ok = Counter(), Counter(), Counter()
    with open(events_path, encoding="utf-8") as f:
        for line in f:
            scenario = json.loads(line).get("ScenarioFinished")
            if scenario is None:
                continue
            recorder = scenario["recorder"]
            for case_id, node in recorder.get("cases", {}).items():
                interaction = recorder.get("interactions", {}).get(case_id)
                if not interaction or not interaction.get("response"):
                    continue
                case = node["value"]
                key = (case["method"], case["path"])
                if key not in operations:
                    key = ("other", "methods")
                calls[key] += 1
                if 200 <= interaction["response"]["status_code"] < 300:
                    ok[key] += 1
                    if case.get("meta", {}).get("phase", {}).get("name") == "stateful":
                        stateful_ok[key] += 1

    rows = [
        (operations[key], f"{key[0]} {key[1]}", calls[key], ok[key], stateful_ok[key])
        for key in sorted(operations, key=lambda k: (k[1], k[0]))
    ]
    other = ("other", "methods")
    rows.append(
        ("(undocumented methods)", "405 expected", calls[other], ok[other], stateful_ok[other])
    )
    rows.append(
        ("total", "", sum(calls.values()), sum(ok.values()), sum(stateful_ok.values()))
    )
    header = ("operation", "method path", "calls", "2xx", "2xx stateful")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    print("Calls per operation (2xx stateful: of the 2xx, those sent by the stateful phase)")
    for row in [header, *rows]:
        print(
            f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  "
            f"{row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}  {row[4]:>{widths[4]}}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
