"""The house rules of the code, checked: who imports whom, and a docstring on every public name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("harness/**/*.py"), *ROOT.glob("reference_bot/*.py")])


def imported(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def of(path: Path, root: str) -> set[str]:
    return {name for name in imported(path) if name == root or name.startswith(f"{root}.")}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", [p for p in SOURCES if rel(p).startswith("reference_bot/")], ids=rel)
def test_the_template_imports_nothing_of_the_harness_but_the_wire_model(path):
    outside = {name for name in of(path, "harness") if not name.startswith("harness.wire")} - {"harness"}
    assert not outside, f"{rel(path)} imports {sorted(outside)}: a bot made from the template carries only harness.wire"


def test_the_harness_imports_the_template_only_to_start_it():
    importers = {rel(p) for p in SOURCES if rel(p).startswith("harness/") and of(p, "reference_bot")}
    assert importers == {"harness/cli/__init__.py", "harness/cli/commands.py"}  # the serve command's options and run


@pytest.mark.parametrize("path", sorted(ROOT.glob("harness/wire/*.py")), ids=rel)
def test_the_wire_model_stands_on_its_own(path):
    assert {name for name in of(path, "harness") if not name.startswith("harness.wire")} <= {"harness"}


def test_the_public_api_is_named_and_documented():
    assert harness.__all__ and sorted(harness.__all__) == harness.__all__
    for name in harness.__all__:
        value = getattr(harness, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"harness.{name} has no docstring"


def undocumented(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = [] if ast.get_docstring(tree) else ["(module)"]

    def visit(node, prefix: str = "") -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not child.name.startswith(
                "_"
            ):
                if not ast.get_docstring(child):
                    missing.append(f"{prefix}{child.name} (line {child.lineno})")
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{child.name}.")

    visit(tree)
    return missing


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_every_public_function_and_class_says_what_it_does(path):
    assert undocumented(path) == []
