"""Imports point down, and a flow is one package with the same files as every other.

Layers, bottom up: `schemas` (Avro, codec, registry client) < `core` (settings,
topics, errors, retries, the Faust app) < `tables` < `streams` (the flows) < the
processes on top (`gateway`, `sinks`, `momentum`, `benchmarks`). A module may
import its own folder and the folders below it, never one above. Read from the
source (every import, those inside functions too), so a lazy import cannot
hide an upward dependency.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.flows import FLOWS

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {
    "schemas": 0,
    "core": 1,
    "tables": 2,
    "streams": 3,
    "gateway": 4,
    "sinks": 4,
    "momentum": 4,
    "benchmarks": 4,
}
TOP = {folder for folder, rank in LAYERS.items() if rank == max(LAYERS.values())}
# What every flow has, unless its __init__ docstring says "No `<name>.py`".
FLOW_FILES = ("rules", "records", "agents", "views")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in the file; `from a import b` gives a.b too,
    since b may be a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def project_files() -> Iterator[Path]:
    for folder in LAYERS:
        yield from sorted((ROOT / folder).rglob("*.py"))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports."""
    modules = {module_name(path): path for path in project_files()}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for _, m in imported_modules(path) if m in modules}
    return edges


def test_no_folder_imports_a_folder_above_it() -> None:
    upward = []
    for path in project_files():
        folder = path.relative_to(ROOT).parts[0]
        for line, module in imported_modules(path):
            target = module.split(".")[0]
            if target in LAYERS and LAYERS[target] > LAYERS[folder]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, "imports that point up:\n" + "\n".join(sorted(set(upward)))


def test_the_folders_on_top_import_no_cycle_between_them(graph: dict[str, set[str]]) -> None:
    folders: dict[str, set[str]] = {folder: set() for folder in TOP}
    for module, imported in graph.items():
        folder = module.split(".")[0]
        if folder in TOP:
            folders[folder] |= {m.split(".")[0] for m in imported if m.split(".")[0] in TOP}
    for folder, deps in folders.items():
        seen, todo = set(), [d for d in deps if d != folder]
        while todo:
            current = todo.pop()
            if current == folder:
                pytest.fail(f"{folder} imports itself back through {sorted(seen)}")
            if current not in seen:
                seen.add(current)
                todo += [d for d in folders[current] if d != current]


def test_nothing_on_top_imports_what_builds_the_faust_app(graph: dict[str, set[str]]) -> None:
    # The modules that import core.app, directly or through others: the tables, the
    # flows' agents and views, and their plumbing. The gateway, the sink, the CLI
    # and the benchmarks use the base, the schemas and the pure rules only.
    builds = {"core.app"}
    while more := {m for m, imported in graph.items() if imported & builds} - builds:
        builds |= more
    assert {"streams.app", "tables.orders", "streams.orders.agents"} <= builds
    found = [
        f"{module} imports {sorted(below)}"
        for module, imported in graph.items()
        if module.split(".")[0] in TOP
        and (below := {m for m in imported & builds if m.split(".")[0] not in TOP})
    ]
    assert not found, "\n".join(found)


def test_importing_the_cli_gateway_and_sink_builds_no_faust_app() -> None:
    code = """
import json, sys
import momentum.cli, momentum.dlq, gateway.main, sinks.service, sinks.__main__
momentum.cli.build_parser()
import streams.orders.rules, streams.payments.rules, streams.analytics.records
print(json.dumps(sorted(sys.modules)))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "gateway.main" in loaded and "momentum.dlq" in loaded
    built = loaded & {"core.app", "core.tuning", "streams.app"}
    assert not built, f"a Faust app was built: {sorted(built)}"
    assert "faust" not in loaded, "faust was imported"


def flow_packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "streams").glob("*/__init__.py"))


def test_the_flow_list_names_every_flow_package() -> None:
    assert sorted(FLOWS) == flow_packages()
    assert len(set(FLOWS)) == len(FLOWS)


@pytest.mark.parametrize("flow", flow_packages())
def test_a_flow_has_the_same_files_as_every_other(flow: str) -> None:
    package = ROOT / "streams" / flow
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    doc = " ".join(doc.split())
    assert (package / "rules.py").exists() and (package / "agents.py").exists()
    for name in FLOW_FILES:
        has = (package / f"{name}.py").exists()
        says_none = f"No `{name}.py`" in doc
        if has:
            assert not says_none, f"streams/{flow}/{name}.py exists, yet the docstring says none"
        else:
            assert says_none, f"streams/{flow} has no {name}.py and its docstring does not say so"


def test_every_layer_but_the_benchmarks_is_a_package_pyproject_ships() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = {
        p.rstrip("*").rstrip(".")
        for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert set(LAYERS) - {"benchmarks"} <= include
