"""Runs the official rlms RLM with environment="rlmbox" (executed by the rlms venv's
python from test_rlms_env.py). argv: exec_url model_url context"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

import rlmbox.rlms  # noqa: F401,E402  (registers environment="rlmbox")
from rlm import RLM  # noqa: E402

exec_url, model_url, context = sys.argv[1:4]
rlm = RLM(backend="openai",
          backend_kwargs={"model_name": "scripted", "api_key": "user-side-key", "base_url": model_url},
          environment="rlmbox", environment_kwargs={"url": exec_url}, max_iterations=6,
          verbose=bool(os.environ.get("RLMS_VERBOSE")))
result = rlm.completion(context)
print(json.dumps({"response": result.response}))
