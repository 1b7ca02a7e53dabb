"""eryx's side of `make bench-cpu` (bench/cpu_bench.py runs it in a venv of the
native CPython 3.13 holding pyeryx): reads one JSON line {"src": ...} per run,
runs it in a new `eryx.Sandbox`, prints {"out": stdout} or {"error": ...}."""
import json
import sys

import eryx

print(json.dumps({"ready": getattr(eryx, "__version__", "?")}), flush=True)
for line in sys.stdin:
    try:
        out = eryx.Sandbox().execute(json.loads(line)["src"]).stdout
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        print(json.dumps({"out": out}), flush=True)
    except Exception as e:  # noqa: BLE001 - reported to the driver, which stops
        print(json.dumps({"error": repr(e)[-2000:]}), flush=True)
