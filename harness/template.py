"""``iadvize-harness template``: the reference bot copied out as a package of its own name, to start a bot from.

The copy is the template's files as installed (a checkout or a wheel alike), without caches. Its code
imports itself relatively and names its loggers after its package, so nothing in it needs changing; only
the prose (README, docstrings, comments) says ``reference_bot``, and is rewritten to the new name so the
commands it shows are the copy's.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import sys
from importlib.resources import files
from pathlib import Path

TEMPLATE = "reference_bot"
PROSE = (".py", ".md", ".yaml")  # files whose mentions of the template's name are rewritten
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "instance")


class TemplateError(ValueError):
    """The copy cannot be made; the message says why and what to do."""


def copy_template(folder: Path, name: str = "mybot") -> Path:
    """Copy the reference bot into ``folder/name`` and return that package folder."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.islower():
        raise TemplateError(
            f"--name {name!r} is not a package name: use lower case letters, digits and _ (for example mybot)"
        )
    if name == TEMPLATE or name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise TemplateError(f"--name {name!r} would hide the module of that name: choose another (e.g. mybot)")
    package = folder / name
    if package.exists():
        raise TemplateError(f"{package} already exists: choose another --name or folder")
    source = Path(str(files(TEMPLATE)))
    try:
        shutil.copytree(source, package, ignore=SKIPPED)
    except OSError as problem:
        raise TemplateError(f"cannot write {package}: {problem.strerror or problem}") from problem
    mention = re.compile(rf"\b{TEMPLATE}\b")
    for path in package.rglob("*"):
        if path.suffix in PROSE:
            text = path.read_text(encoding="utf-8")
            path.write_text(mention.sub(name, text), encoding="utf-8")
    return package


PYTEST_SETTINGS = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")  # where pytest may find its own


def write_pytest_settings(package: Path) -> Path | None:
    """A ``pytest.ini`` beside the copy, pointing the harness's plugin at it: plain ``pytest`` in the project
    runs the copy's scripts against the copy. None when the folder already has settings pytest reads (the
    option is then the user's to add: ``--iadvize-bot NAME``)."""
    folder, name = package.parent, package.name
    if any((folder / settings).exists() for settings in PYTEST_SETTINGS):
        return None
    written = folder / "pytest.ini"
    written.write_text(
        "# Written by `iadvize-harness template`: pytest runs the conversation scripts against this bot.\n"
        f"[pytest]\ntestpaths = {name}/scripts\naddopts = --iadvize-bot {name}\n",
        encoding="utf-8",
    )
    return written
