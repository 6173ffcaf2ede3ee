"""What conversation scripts are made of at suite scale: files read with their line numbers, steps
included from other files, and the ``{name}`` placeholders that captured and built-in values fill.

``include: path`` (a step of its own) puts another file's steps there: a partial conversation (a YAML
list of steps, conventionally ``*.steps.yaml`` so that pytest does not collect it) or another script
(its ``steps``). The path is relative to the including file; includes may nest, not loop.

``{name}`` in what the visitor says or in an expectation is the value an earlier step captured
(``capture: {name: ...}``); ``{$now}``, ``{$uuid}`` and ``{$random_digits(6)}`` are built in, each
drawn once per run of the script (so an expectation can name the value the visitor sent).
"""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path

import yaml

from harness.wire.model import utc_iso

PLACEHOLDER = re.compile(r"\{(\$?[A-Za-z_][A-Za-z0-9_]*(?:\(\d+\))?)\}")
BUILT_IN = re.compile(r"\$(now|uuid|random_digits\((\d+)\))")
BUILT_INS = "$now, $uuid, $random_digits(N)"


class Located(dict):
    """A YAML mapping that knows the line it starts on (1-based)."""

    line = 0


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node) -> Located:
    mapping = Located(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class FileProblem(ValueError):
    """A file that cannot be read or parsed: the reason, without the file's name."""


def read(path: Path):
    """The YAML document at ``path``, its mappings :class:`Located`; FileProblem when it cannot be read."""
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader that keeps lines
    except (OSError, UnicodeDecodeError) as error:
        raise FileProblem(f"cannot read the file ({error})") from None
    except yaml.YAMLError as error:
        raise FileProblem(f"not valid YAML: {error}") from None


def included_steps(step: dict, source: str, chain: tuple[Path, ...]) -> tuple[Path, list]:
    """The file an ``include`` step names and its list of steps; ValueError saying what is wrong."""
    if set(step) != {"include"} or not isinstance(step["include"], str) or not step["include"].strip():
        raise ValueError("an include step is only `include: path/to/file.yaml`")
    target = (Path(source).parent / step["include"]).resolve()
    if target in chain:
        loop = " -> ".join(p.name for p in (*chain[chain.index(target) :], target))
        raise ValueError(f"include loops: {loop}")
    if not target.is_file():
        raise ValueError(f"include: no file {step['include']!r} beside {Path(source).name}")
    try:
        data = read(target)
    except FileProblem as problem:
        raise ValueError(f"include {step['include']!r}: {problem}") from None
    steps = data.get("steps") if isinstance(data, dict) else data
    if not isinstance(steps, list) or not steps:
        raise ValueError(f"include {step['include']!r}: not a list of steps, nor a script with steps")
    return target, steps


def placeholders(value) -> set[str]:
    """The ``{name}`` placeholders in ``value`` (strings, at any depth of lists and mappings)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def unknown_placeholder(value, known: set[str]) -> str | None:
    """A placeholder of ``value`` that is neither in ``known`` nor built in, or None."""
    for name in sorted(placeholders(value)):
        if name not in known and not BUILT_IN.fullmatch(name):
            return name
    return None


def fill(value, values: dict[str, str]):
    """``value`` with its placeholders replaced; built-ins are drawn into ``values`` on first use."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda found: _value(found.group(1), values), value)
    if isinstance(value, dict):
        return type(value)({k: fill(v, values) for k, v in value.items()}) if value else value
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def _value(name: str, values: dict[str, str]) -> str:
    if name not in values:
        built = BUILT_IN.fullmatch(name)
        if built is None:  # checked when the script loaded: only a bug gets here
            raise KeyError(f"{{{name}}} has no value")
        if built.group(1) == "now":
            values[name] = utc_iso()
        elif built.group(1) == "uuid":
            values[name] = str(uuid.uuid4())
        else:
            values[name] = "".join(random.choices("0123456789", k=int(built.group(2))))
    return values[name]
