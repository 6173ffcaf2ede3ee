"""The template and the wire model stay light: a bot made from reference_bot carries none of the analysis stack."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "pandas",
    "pyarrow",
    "matplotlib",
    "jupyter_client",
    "ipykernel",
    "papermill",
    "nbconvert",
    "locust",
    "gevent",
    "pact",
)


def test_importing_the_bot_and_the_wire_model_loads_no_heavy_module():
    probe = (
        "import json, sys; import reference_bot, harness.wire; reference_bot.create_app; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(loaded.stdout) == []
