"""Optional parts of the install: a command whose extra is missing says which one to install."""

from __future__ import annotations

import importlib.util

# extra -> the modules it installs (one of each is enough to tell it is there)
EXTRAS = {
    "analysis": ("pandas", "pyarrow", "matplotlib", "papermill", "nbconvert", "ipykernel"),
    "load": ("locust",),
}


class MissingExtra(Exception):
    """A command needs an optional part of the install that is not there; the message says how to add it."""


def require(extra: str, command: str) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` can be imported."""
    missing = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtra(
            f"`iadvize-harness {command}` needs the {extra} extra, which is not installed (no "
            f"{missing[0]}): pip install 'iadvize-harness[{extra}]' (with pipx: pipx runpip iadvize-harness "
            f"install 'iadvize-harness[{extra}]')"
        )
