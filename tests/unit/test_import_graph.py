"""The shape of the code, kept by the suite: no import circle in agent/, dependencies point down the layers, and a
module over 400 lines says why at its top.

Every import counts, wherever it is written (module level, inside a function, under ``TYPE_CHECKING``): a
function-level import that dodges a circle at import time is still a circle in the design. The graph is read from
the source with ``ast``; nothing is imported.

Layers, bottom to top (``docs/architecture.md`` explains each package):

    agent (the package's own __init__: the version), model, errors, systemd   standard library only
    config      YAML -> validated models; knows nothing of the engine
    wire        the message format on the MQTT topics, shared by sinks and the centre
    sources, kpi, spool, sinks, center, web   siblings: each imports only the layers below, never another sibling
    runtime     the compile step that cross-checks a whole site, and the wiring where the siblings meet
    cli         the energy-agent commands
    __main__    ``python -m agent``

A new package under agent/ must be placed here (and named in docs/architecture.md) before it passes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent"

BASE = {"agent", "model", "errors", "systemd"}
SIBLINGS = {"sources", "kpi", "spool", "sinks", "center", "web"}
BELOW_SIBLINGS = BASE | {"config", "wire"}

# unit -> the units it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "agent": set(),
    "errors": set(),
    "model": set(),
    "systemd": set(),
    "config": BASE,
    "wire": BASE | {"config"},
    **{sibling: BELOW_SIBLINGS for sibling in SIBLINGS},
    "runtime": BELOW_SIBLINGS | (SIBLINGS - {"center"}),
    "cli": BELOW_SIBLINGS | (SIBLINGS - {"center"}) | {"runtime"},
    "__main__": {"cli"},
}

SIZE_LIMIT = 400  # lines; a longer module starts with a line "# size: <why it is one module>"
SIZE_MARK = "# size: "


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def agent_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(AGENT.rglob("*.py"))}


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name ``module`` imports, anywhere in its file, relative imports made absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``


def import_graph() -> dict[str, set[str]]:
    """Module -> the agent modules it imports (the nearest existing module of each imported name). A module's
    import of its own parent packages is not an edge: Python runs those first whatever the module says."""
    modules = agent_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                graph[module].add(name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def unit(module: str) -> str:
    """The layer unit of a module: ``agent.kpi.engine`` -> ``kpi``, ``agent.wire`` -> ``wire``, ``agent`` -> ``agent``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, imported in sorted(graph.items()):
        mine = unit(module)
        allowed = ALLOWED.get(mine)
        if allowed is None:
            out.append(f"{module}: agent/{mine} is in no layer: place it in ALLOWED here and in docs/architecture.md")
            continue
        out += [
            f"{module} imports {other}: {mine} may import only {', '.join(sorted(allowed)) or 'the standard library'}"
            for other in sorted(imported)
            if unit(other) != mine and unit(other) not in allowed
        ]
    return out


def protocol_violations(graph: dict[str, set[str]]) -> list[str]:
    """Protocols under sources/ meet only in sources' own shared modules (``base``), never in each other."""
    out = []
    for module, imported in sorted(graph.items()):
        parts = module.split(".")
        if parts[:2] != ["agent", "sources"] or len(parts) < 4:
            continue
        for other in sorted(imported):
            theirs = other.split(".")
            if theirs[:2] == ["agent", "sources"] and len(theirs) >= 4 and theirs[2] != parts[2]:
                out.append(f"{module} imports {other}: one protocol never imports another")
    return out


def long_modules() -> dict[str, int]:
    """agent/ modules over the limit without a '# size: <why>' first line, with their line counts."""
    out = {}
    for path in sorted(AGENT.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > SIZE_LIMIT and not (lines[0].startswith(SIZE_MARK) and lines[0][len(SIZE_MARK) :].strip()):
            out[path.relative_to(ROOT).as_posix()] = len(lines)
    return out


def test_no_import_circle_in_agent() -> None:
    found = circles(import_graph())
    assert found == [], "import circles (any import counts, function-level too):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in found
    )


def test_dependencies_point_down_the_layers() -> None:
    violations = layer_violations(import_graph())
    assert violations == [], "\n".join(violations)


def test_protocols_under_sources_do_not_import_each_other() -> None:
    violations = protocol_violations(import_graph())
    assert violations == [], "\n".join(violations)


def test_a_module_over_400_lines_says_why_at_its_top() -> None:
    unexplained = [
        f"{name}: {n} lines; split it, or make its first line '{SIZE_MARK}<why it is one module>'"
        for name, n in long_modules().items()
    ]
    assert unexplained == [], "\n".join(unexplained)


# --- the checks themselves: each finds what it is for --------------------------------------------------------


def test_the_circle_finder_finds_a_function_level_circle_and_only_real_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"x": {"y"}, "y": {"x"}, "p": {"q"}, "q": {"p"}}) == [["p", "q"], ["x", "y"]]


def test_every_import_form_is_read(tmp_path: Path) -> None:
    pkg = tmp_path / "agent" / "kpi"
    pkg.mkdir(parents=True)
    source = pkg / "engine.py"
    source.write_text(
        "from __future__ import annotations\n"
        "import agent.model\n"
        "from agent.config import kpi\n"
        "from . import state\n"
        "from ..sinks.mqtt import MqttSink\n"
        "def later():\n"
        "    from agent.runtime import compile\n"
    )
    names = set(imported_names("agent.kpi.engine", source))
    assert {"agent.model", "agent.config.kpi", "agent.kpi.state", "agent.sinks.mqtt", "agent.runtime.compile"} <= names


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        (("agent.center.cli", "agent.cli.run"), "agent.center.cli imports agent.cli.run"),
        (("agent.config.kpi", "agent.kpi.check"), "agent.config.kpi imports agent.kpi.check"),
        (("agent.sources.opcua.session", "agent.sinks.mqtt"), "agent.sources.opcua.session imports agent.sinks.mqtt"),
        (("agent.newthing.x", "agent.model"), "agent/newthing is in no layer"),
    ],
)
def test_the_layer_check_names_an_upward_or_sideways_import(edge: tuple[str, str], expected: str) -> None:
    importer, imported = edge
    violations = layer_violations({importer: {imported}})
    assert len(violations) == 1 and expected in violations[0]
    assert layer_violations({"agent.runtime.parts": {"agent.sinks.mqtt", "agent.kpi.engine", "agent.config"}}) == []


def test_the_protocol_check_names_one_protocol_importing_another() -> None:
    graph = {"agent.sources.opcua.source": {"agent.sources.modbus.codec", "agent.sources.base"}}
    assert protocol_violations(graph) == [
        "agent.sources.opcua.source imports agent.sources.modbus.codec: one protocol never imports another"
    ]
