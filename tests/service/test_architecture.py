"""Imports run one way: cli/server → transports → data plane → model control → (batcher,
execution, repository, numerics), with no import cycle anywhere among the service's modules;
and the client package imports no server module (a client machine needs grpcio, protobuf,
httpx and numpy only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from service.launcher import REPO

PACKAGE = REPO / "service"

LAYERS = {
    # module prefix: the service modules it must never import
    "service.client": ("service.",),  # except service._generated and itself, see below
    "service.dataplane": ("service.rest", "service.grpc", "service.oip", "service.server",
                          "service.workers", "service.cli"),
    "service.oip": ("service.rest", "service.grpc", "service.server", "service.workers"),
    "service.batching": ("service.dataplane", "service.execution", "service.repository",
                         "service.rest", "service.grpc", "service.oip"),
    "service.execution": ("service.dataplane", "service.rest", "service.grpc", "service.oip",
                          "service.server", "service.cli", "service.workers", "service.control"),
    "service.control": ("service.dataplane", "service.rest", "service.grpc", "service.oip",
                        "service.server", "service.cli", "service.workers"),
    "service.repository": ("service.dataplane", "service.execution", "service.rest",
                           "service.grpc", "service.oip", "service.control", "service.cli"),
    "service.losses": ("service.dataplane", "service.repository", "service.batching",
                       "service.rest", "service.grpc", "service.oip"),
    "service.codecs": ("service.dataplane", "service.rest", "service.grpc", "service.oip"),
    "service.activations": ("service.dataplane", "service.repository", "service.execution"),
    # Keys, TLS files and what is open: transport-neutral, applied by the transports.
    "service.security": ("service.rest", "service.grpc", "service.oip", "service.dataplane",
                         "service.server", "service.workers", "service.cli"),
}  # fmt: skip
ALLOWED_IN_CLIENT = ("service.client", "service._generated")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def service_imports(path: Path) -> set[str]:
    """Every ``service.*`` module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "service" or name.startswith("service.")}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "_generated" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_follow_the_layers(path: Path) -> None:
    module = module_name(path)
    imports = service_imports(path)
    for layer, forbidden in LAYERS.items():
        if module != layer and not module.startswith(layer + "."):
            continue
        if layer == "service.client":
            strays = {i for i in imports if not i.startswith(ALLOWED_IN_CLIENT)}
        else:
            strays = {i for i in imports if i.startswith(forbidden)}
        assert not strays, f"{module} imports {sorted(strays)}"


def _resolve(name: str, modules: set[str]) -> str | None:
    """The service module an imported name loads (``from a.b import c``: ``a.b``, or the
    module ``a.b.c`` when there is one)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module → the service modules it imports (at module level or inside functions; the
    packages a submodule's import runs first are not counted as edges)."""
    modules = {module_name(p) for p in SOURCES}
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        module = module_name(path)
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target and target != module and target != "service":
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (modules in order), or ``[]``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert find_cycle(graph) == []
    assert "service.cli" not in graph["service.execution.model_process"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_layers_cover_what_they_should() -> None:
    modules = {module_name(p) for p in SOURCES}
    for layer in LAYERS:
        assert any(m == layer or m.startswith(layer + ".") for m in modules), layer


def test_importing_the_client_loads_no_server_code() -> None:
    probe = (
        "import sys, service.client\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('service', 'onnxruntime', 'fastapi', 'starlette', 'uvicorn', 'pydantic', "
        "'prometheus_client', 'PIL', 'simdjson'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert loaded, "nothing printed"
    strays = [m for m in loaded if m != "service" and not m.startswith(ALLOWED_IN_CLIENT)]
    assert strays == []
