"""The house rules, checked on the source: rooms import only what they may, no module
imports itself back through others, functions in the function's package stay short, and
the README's layout map names what the tree holds."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

ROOT = REPO
PACKAGES = ("lambda_pkg", "pipeline", "reliability", "benchmarks", "imgpipe_samples")
MAX_FUNCTION_LINES = 40  # lambda_pkg: what one reader holds in view


def modules() -> dict[str, Path]:
    """Every first-party module by dotted name (a package by its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """Every module `path` imports, wherever the import sits (top level, in a function, under
    TYPE_CHECKING): each is an edge a reader follows. `from p import m` is m when it is a
    module, else p."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield child if child in known else base


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {imported for imported in imports(path, name, known) if imported in known}
        for name, path in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(edges[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _third_party(package: str) -> dict[str, set[str]]:
    known = modules()
    return {
        name: {i.split(".")[0] for i in imports(path, name, known)}
        for name, path in known.items()
        if name.split(".")[0] == package
    }


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("lambda_pkg", {"pulumi", "pulumi_aws", "pipeline"}), ("pipeline", {"PIL", "pillow_heif"})],
)
def test_rooms_import_only_what_they_may(package: str, forbidden: set[str]) -> None:
    broken = {name: sorted(used & forbidden) for name, used in _third_party(package).items()}
    assert {name: used for name, used in broken.items() if used} == {}


def test_importing_every_pipeline_module_loads_no_pillow() -> None:
    names = sorted(
        n for n in modules() if n.split(".")[0] == "pipeline" and n != "pipeline.__main__"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PIL', 'pillow_heif')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def _function_lengths(package: str) -> Iterator[tuple[str, int]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                yield where, node.end_lineno - node.lineno + 1


def test_no_function_in_the_function_package_is_over_40_lines() -> None:
    long = {where: n for where, n in _function_lengths("lambda_pkg") if n > MAX_FUNCTION_LINES}
    assert long == {}


# -- the README's map ---------------------------------------------------------------------


def layout_map() -> dict[str, str]:
    """The README's Layout block as {path: description}: `name  description` lines, names
    before the first run of two spaces, nested by two-space indents; a line that starts past
    the names column continues the description above it."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no ## Layout code block"
    entries: dict[str, str] = {}
    folders: list[tuple[int, str]] = []  # (indent, path) of the folders the line may be in
    for line in block.group(1).splitlines():
        indent = len(line) - len(line.lstrip(" "))
        names, _, description = line.strip().partition("  ")
        if not names or indent > (folders[-1][0] + 2 if folders else 0):
            continue  # blank, or a description continued
        while folders and folders[-1][0] >= indent:
            folders.pop()
        prefix = folders[-1][1] if folders else ""
        for name in names.split():
            entries[prefix + name] = description.strip()
        if names.endswith("/") and " " not in names:
            folders.append((indent, prefix + names))
    return entries


def tree() -> set[str]:
    """What the map must name: each package's modules and subpackages, and every tracked
    file or folder at the top of the repository."""
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    top = {path.split("/")[0] + ("/" if "/" in path else "") for path in tracked}
    top -= {".gitignore", ".ci/", "Makefile", "pyproject.toml", "README.md", "RELIABILITY.md"}
    inside = set()
    for package in ("lambda_pkg", "pipeline"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if path.name != "__init__.py":
                inside.add(relative)
            if path.parent != ROOT / package:
                inside.add(path.parent.relative_to(ROOT).as_posix() + "/")
    return top | inside


def test_the_readme_layout_names_what_the_tree_holds() -> None:
    mapped = set(layout_map())
    assert sorted(tree() - mapped) == [], "in the tree, missing from README ## Layout"
    assert sorted(p for p in mapped if not (ROOT / p).exists()) == [], "mapped, not in the tree"
