"""The package's folders are its architecture: each layer imports only the layers below it,
and nothing imports in a circle. Every import counts, those inside functions and under
``TYPE_CHECKING`` too: a circle of type references is still a circle to a reader.

    core (pure)  <  adapters: aws, github, kube, deploy  <  deployers  <  run  <  strategies, report
                 <  commands  <  the CLI (invocation, app)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cli" / "releasegate"
LAYERS: dict[str, float] = {
    "core": 0,
    "aws": 1, "github": 1, "kube": 1, "deploy": 1, "notify": 1,
    "deployers": 1.5,  # the two deployers (deploy/skaffold, kube/serverside) behind one interface
    "run": 2,
    "strategies": 3, "report": 3,
    "commands": 4,
    "invocation": 5, "app": 6, "__main__": 7,
}  # fmt: skip
ADAPTERS = {"aws", "github", "kube", "deploy", "notify"}
Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports (``from pkg import module`` names the module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def package_graph() -> Graph:
    paths = list(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, known) for p in paths}


def circles(graph: Graph) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def family(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(graph: Graph) -> list[str]:
    """Imports of a higher layer, or of another family in the same layer (one adapter of another)."""
    wrong = []
    for module, targets in sorted(graph.items()):
        if family(module) not in LAYERS:
            continue
        for target in sorted(targets):
            here, there = LAYERS[family(module)], LAYERS.get(family(target), 0)
            if there > here or (there == here and family(target) != family(module)):
                wrong.append(f"{module} imports {target}")
    return wrong


def test_nothing_in_the_package_imports_in_a_circle() -> None:
    assert circles(package_graph()) == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    graph = package_graph()
    assert {family(m) for m in graph} - {""} <= set(LAYERS), "a new folder needs its place in LAYERS"
    assert upward_imports(graph) == []


def test_the_check_finds_a_circle_and_an_adapter_importing_a_command() -> None:
    graph: Graph = {
        "releasegate.kube.ledger": {"releasegate.commands.pipeline", "releasegate.core.errors"},
        "releasegate.commands.pipeline": {"releasegate.kube.ledger"},
        "releasegate.deploy.render": {"releasegate.kube.api"},
        "releasegate.kube.api": set(),
        "releasegate.core.errors": set(),
    }
    assert circles(graph) == [["releasegate.commands.pipeline", "releasegate.kube.ledger"]]
    assert upward_imports(graph) == [
        "releasegate.deploy.render imports releasegate.kube.api",
        "releasegate.kube.ledger imports releasegate.commands.pipeline",
    ]


def test_no_module_is_over_400_lines() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
