"""The package's imports form layers (docs/architecture.md, "Where things live"): every module
imports only its own layer and the layers below, and there is no import cycle, counting the
imports inside functions too (an import moved into a function to dodge a cycle is still a
cycle). Importing ``a.b.c`` runs ``a/b/__init__.py`` too, so it counts as importing ``a.b``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "inception_v2"

# bottom to top; a module belongs to the layer of its longest listed prefix
LAYERS: List[List[str]] = [
    ["errors", "paths", "version", "atomic", "locking", "procs", "formats"],
    ["models"],
    ["data", "summary", "evaluation"],
    ["deploy", "integrations"],
    ["train"],
    ["report"],
    ["evaluate", "predict", "demo"],
    ["", "cli", "__main__"],  # "": the package's own __init__, a facade over the layers below
]


def modules() -> Dict[str, Path]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: Set[str]) -> Set[str]:
    """The package's modules ``name`` imports, anywhere in it (module level or in a function;
    not under ``if TYPE_CHECKING:``),
    with the packages each import runs on the way (``a.b`` for ``a.b.c``, unless ``name`` is in
    ``a.b``; not the root)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # under ``if TYPE_CHECKING:``: never run
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            parts = target.split(".")
            for prefix in (".".join(parts[:i]) for i in range(2, len(parts) + 1)):
                # a package that holds ``name`` has started running before ``name`` itself
                if prefix in known and not name.startswith(prefix + "."):
                    found.add(prefix)
            if target == PACKAGE:
                found.add(PACKAGE)
    found.discard(name)
    return found


def layer_of(name: str) -> int:
    rest = name[len(PACKAGE) + 1 :] if name != PACKAGE else ""
    best = None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if rest == prefix or (prefix and rest.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS here and to docs/architecture.md"
    return best[0]


def graph() -> Dict[str, Set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_import_goes_down_or_sideways():
    upward = [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_nothing_imports_the_cli_or_the_package_facade():
    g = graph()
    bad = [
        f"{name} imports {target}"
        for name, targets in g.items()
        for target in targets
        if (target == PACKAGE or target.startswith(f"{PACKAGE}.cli"))
        and not name.startswith(f"{PACKAGE}.cli")
        and name != f"{PACKAGE}.__main__"
    ]
    assert not bad, "\n".join(bad)


def test_there_is_no_import_cycle():
    g = graph()
    g = {k: v - {PACKAGE} for k, v in g.items()}  # the facade imports everything; nothing imports it
    color: Dict[str, int] = {}
    stack: List[str] = []
    cycles: List[str] = []

    def visit(node: str) -> None:
        color[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if color.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in color:
                visit(nxt)
        stack.pop()
        color[node] = 2

    for node in sorted(g):
        if node not in color:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_walker_sees_imports_inside_functions(tmp_path):
    """The checks above would miss a cycle hidden in a function if the walker did."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from inception_v2.deploy.load import load_model\n")
    known = {"inception_v2.deploy", "inception_v2.deploy.load", "inception_v2.models"}
    assert imports("inception_v2.models", path, known) == {"inception_v2.deploy", "inception_v2.deploy.load"}
    assert layer_of("inception_v2.deploy.load") > layer_of("inception_v2.models.weights")
