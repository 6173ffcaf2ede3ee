"""The files the harness ships with, wherever it is installed: a checkout, a wheel, a pipx venv.

They live in the repository where people edit them (``contracts/``, ``notebooks/``); ``harness/data/``
links to them, so the wheel and the sdist carry copies and ``importlib.resources`` finds them in both
cases. Every command that reads one takes a flag that overrides it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _shipped(package: str, *parts: str) -> Path:
    # Every install we support is a folder on disk (the pact verifier and papermill want paths).
    return Path(str(files(package).joinpath(*parts)))


def pacts() -> Path:
    """The folder of the iAdvize pacts (``contracts/pacts`` in the repository)."""
    return _shipped("harness", "data", "pacts")


def schemas() -> Path:
    """The folder of the JSON Schemas of every request and response body."""
    return _shipped("harness", "data", "schemas")


def openapi() -> Path:
    """The OpenAPI 3.1 description of the endpoints a bot serves."""
    return _shipped("harness", "data", "openapi.yaml")


def notebooks() -> Path:
    """The folder of the Jupyter notebooks the report executes."""
    return _shipped("harness", "data", "notebooks")


def sample() -> Path:
    """The committed sample recording: 2,000 synthetic conversations with the reference bot."""
    return notebooks() / "data" / "sample.jsonl.gz"


def scenarios() -> Path:
    """The reference bot's shipped scenarios (one YAML file per ``idBot``)."""
    return _shipped("reference_bot", "scenarios")


def scripts() -> Path:
    """The conversation scripts (``*.convo.yaml``) of the shipped scenarios."""
    return _shipped("reference_bot", "scripts")
