"""The walls between the rooms, read from the package's own imports (ast, so comments cannot fool it).

A Guest has only its hypercall gate and a Launcher only its /dev/lguest handle, both objects
handed to them, so neither imports the Host; the Host imports no Guest, Launcher or facade
code. The shared floor (abi, errors, memory, structs, trace) imports no room. The facade
(machine, cli, show, widgets) may look into every room. See lguest/README.md.
"""
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lguest"
FLOOR = {"lguest.abi", "lguest.errors", "lguest.memory", "lguest.structs", "lguest.trace"}
ROOMS = ("lguest.guest", "lguest.host", "lguest.launcher")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, top_level_only: bool = False) -> set[str]:
    """The lguest modules a module imports, relative imports resolved. ``top_level_only``:
    only statements that run when the module is imported (not those inside functions)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:             # "from . import abi" imports the module lguest.abi
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m == "lguest" or m.startswith("lguest.")}


def room_of(name: str) -> str:
    for room in ROOMS:
        if name == room or name.startswith(room + "."):
            return room
    return "floor" if name in FLOOR else "facade"


def allowed(importer: str, imported: str) -> bool:
    """A room imports itself and the floor; the floor imports only the floor."""
    here, there = room_of(importer), room_of(imported)
    if here == "facade":
        return True
    return there == "floor" or there == here


@pytest.mark.parametrize("name", sorted(n for n in MODULES if room_of(n) != "facade"))
def test_walls_each_module_imports_only_its_own_room_and_the_floor(name):
    crossings = sorted(m for m in imports(name) if not allowed(name, m))
    assert not crossings, f"{name} ({room_of(name)}) imports {crossings}: a room may import only itself " \
                          f"and the floor ({sorted(FLOOR)})"


def test_walls_forbid_exactly_the_doors_of_the_issue():
    """The rule spelled out: nothing in launcher/ or guest/ names lguest.host; nothing in host/
    names lguest.guest, lguest.launcher or lguest.machine."""
    for name in MODULES:
        names = imports(name)
        if room_of(name) in ("lguest.launcher", "lguest.guest"):
            assert not any(m.startswith("lguest.host") for m in names), (name, names)
        if room_of(name) == "lguest.host":
            assert not any(m.startswith(("lguest.guest", "lguest.launcher", "lguest.machine")) for m in names), name


def test_walls_the_checker_sees_a_crossing():
    """The checker itself: an import of the Host from a Launcher module is caught."""
    assert not allowed("lguest.launcher.tunnet", "lguest.host.keys")
    assert not allowed("lguest.host.host", "lguest.machine")
    assert not allowed("lguest.trace", "lguest.host.host")
    assert allowed("lguest.launcher.net", "lguest.abi") and allowed("lguest.machine", "lguest.guest.kernel")
    assert "lguest.host.dma" in imports("lguest.widgets.state")


def test_walls_a_launcher_never_reads_the_hosts_record():
    """The handle keeps the Host's ``lg`` for the views; no Launcher code reads an ``.lg``."""
    for name, path in MODULES.items():
        if room_of(name) == "lguest.launcher":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("lg", "host")]
            assert not reads, f"{name} reads .lg or .host at lines {reads}"


def test_no_import_cycle_at_module_level():
    """The graph of imports that run at import time (not those inside functions) has no cycle."""
    graph = {name: {m for m in imports(name, top_level_only=True) if m in MODULES and m != name}
             for name in MODULES}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_each_module_imports_alone_in_a_fresh_interpreter():
    def load(name):
        run = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
        return name, run.returncode, run.stderr[-400:]

    with ThreadPoolExecutor(max_workers=4) as pool:
        names = sorted(n for n in MODULES if not n.endswith(".__main__"))     # those run a CLI
        failed = [(n, err) for n, rc, err in pool.map(load, names) if rc]
    assert not failed, failed
