"""Runs the official rlms RLM with environment="rlmbox" (executed by the rlms venv's
python from test_rlms_env.py). argv: exec_url model_url context; exec_url
"inprocess" runs the code in the installed rlmbox wheel's own engine instead
(then the installed package is used, not the source tree's)."""
import json
import os
import sys

exec_url, model_url, context = sys.argv[1:4]
if exec_url != "inprocess":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

import rlmbox.rlms  # noqa: F401,E402  (registers environment="rlmbox")
from rlm import RLM  # noqa: E402

env_kwargs = {"in_process": True} if exec_url == "inprocess" else {"url": exec_url}
rlm = RLM(backend="openai",
          backend_kwargs={"model_name": "scripted", "api_key": "user-side-key", "base_url": model_url},
          environment="rlmbox", environment_kwargs=env_kwargs, max_iterations=6,
          verbose=bool(os.environ.get("RLMS_VERBOSE")))
result = rlm.completion(context)
print(json.dumps({"response": result.response}))
