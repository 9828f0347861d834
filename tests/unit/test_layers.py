"""The layers of docs/development.md, read from the imports of every module (pure logic: the
source is parsed, nothing is imported). A wrong direction fails with the module and the line."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"helpers": "rbdvm.helpers", "ocf": "rbdvm.ocf", "cli": "rbdvm.cli"}

# layer -> the rbdvm layers it may import (itself included)
MAY_IMPORT = {
    "rbdvm.helpers": set(),           # the package itself: a docstring
    "rbdvm.helpers.core": {"rbdvm.helpers.core"},
    "rbdvm.helpers.ceph": {"rbdvm.helpers.core", "rbdvm.helpers.ceph"},
    "rbdvm.helpers.pacemaker": {"rbdvm.helpers.core", "rbdvm.helpers.pacemaker"},
    "rbdvm.helpers.hypervisor": {"rbdvm.helpers.core", "rbdvm.helpers.hypervisor"},
    # the backup directory on the node's file system, outside the cluster
    "rbdvm.helpers.backupdir": {"rbdvm.helpers.core", "rbdvm.helpers.backupdir"},
    "rbdvm.helpers.ops": {"rbdvm.helpers.core", "rbdvm.helpers.ceph", "rbdvm.helpers.pacemaker",
                          "rbdvm.helpers.hypervisor", "rbdvm.helpers.backupdir", "rbdvm.helpers.ops"},
    # the agent runs Pacemaker's tools through the one runner, and reads node states with
    # crm_mon's one reading; the rest of the Pacemaker adapter is the operations'. It picks
    # a UEFI variables template with the hypervisor adapter's firmware choice (no libvirt)
    "rbdvm.ocf": {"rbdvm.ocf", "rbdvm.helpers.core", "rbdvm.helpers.ceph", "rbdvm.helpers.pacemaker.runner",
                  "rbdvm.helpers.pacemaker.crm_mon", "rbdvm.helpers.hypervisor.firmware"},
    "rbdvm.cli": {"rbdvm.cli", "rbdvm.helpers.core", "rbdvm.helpers.ops", "rbdvm.helpers.ceph.session",
                  "rbdvm.ocf.install"},
}
# outside libraries each layer may use: Ceph's bindings only in the Ceph adapters (and the
# agent's guard), libvirt only in the agent and the hypervisor adapter, click only in the CLI
THIRD_PARTY = {"rados", "rbd", "libvirt", "lxml", "click"}
MAY_USE = {
    "rbdvm.helpers": set(),
    "rbdvm.helpers.core": {"lxml"},
    "rbdvm.helpers.ceph": {"rados", "rbd"},
    "rbdvm.helpers.pacemaker": {"lxml"},
    "rbdvm.helpers.hypervisor": {"libvirt", "lxml"},
    "rbdvm.helpers.backupdir": set(),
    # the operations reach Ceph only through helpers/ceph (images, groups, snapshots, clones,
    # metadata), libvirt only through helpers/hypervisor
    "rbdvm.helpers.ops": {"lxml"},
    "rbdvm.ocf": {"rados", "rbd", "libvirt", "lxml"},
    "rbdvm.cli": {"click"},
}


def modules():
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([package, *parts]), path, path.name == "__init__.py"


KNOWN = {module for module, _, _ in modules()}


def layer_of(module: str) -> str:
    return max((layer for layer in MAY_IMPORT if module == layer or module.startswith(layer + ".")), key=len)


def imports(module: str, path: Path, is_package: bool, top_only: bool = False):
    """(line, imported module) of every import (`top_only`: those a module runs when it is
    loaded, not those inside its functions), relative ones resolved."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(path.read_text())
    for node in (tree.body if top_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:     # from X import m: m may be a module of X
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in KNOWN else target


def allowed(target: str, permitted: set) -> bool:
    return any(target == p or target.startswith(p + ".") for p in permitted)


def test_every_import_goes_in_an_allowed_direction():
    wrong = []
    for module, path, is_package in modules():
        layer = layer_of(module)
        for line, target in imports(module, path, is_package):
            top = target.split(".")[0]
            if top == "rbdvm" and target not in ("rbdvm",) and not allowed(target, MAY_IMPORT[layer]):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {layer} imports {target}")
            if top in THIRD_PARTY and top not in MAY_USE[layer]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {layer} uses {top}")
    assert not wrong, "imports against the layers (docs/development.md):\n" + "\n".join(wrong)


def test_the_checker_sees_a_wrong_direction(tmp_path):
    """The rule is live: a Ceph adapter importing a Pacemaker adapter is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from ..pacemaker import cluster\nimport libvirt\n")
    found = list(imports("rbdvm.helpers.ceph.bad", bad, False))
    assert (1, "rbdvm.helpers.pacemaker.cluster") in found
    assert not allowed("rbdvm.helpers.pacemaker.cluster", MAY_IMPORT["rbdvm.helpers.ceph"])
    assert "libvirt" not in MAY_USE["rbdvm.helpers.ceph"]


# the helpers the agent's light modules may use: the name rule and the defaults, both
# standard library only themselves
STDLIB_ONLY_HELPERS = ("rbdvm.helpers.core.agentparams",
                       "rbdvm.helpers.core.names", "rbdvm.helpers.core.defaults", "rbdvm.helpers.core.errors",
                       "rbdvm.helpers.core.bounded", "rbdvm.helpers.core.hostnames", "rbdvm.helpers.core.peer",
                       "rbdvm.helpers.core.timeouts",
                       "rbdvm.helpers.core.hints")


def test_the_agent_core_needs_only_the_standard_library():
    """What the agent loads for monitor on every node every few seconds: no Ceph, no lxml, no
    helpers but these. Imports inside a function (config= files read through lxml, the
    libvirt bindings monitor can do without) run only when that path is taken."""
    light = [REPO / "ocf" / f"{n}.py" for n in ("codes", "params", "log", "qemuproc", "domain", "rsctmp", "agent",
                                                  "basics", "monitor", "definition")]
    light += [REPO / "helpers" / "core" / f"{m.rsplit('.', 1)[1]}.py" for m in STDLIB_ONLY_HELPERS]
    for path in light:
        module = "rbdvm." + ".".join(path.relative_to(REPO).with_suffix("").parts)
        for line, target in imports(module, path, False, top_only=True):
            assert target.split(".")[0] not in {"rados", "rbd", "lxml", "click"}, f"{path}:{line} {target}"
            if target.startswith("rbdvm."):
                assert target.startswith("rbdvm.ocf.") or target in STDLIB_ONLY_HELPERS, \
                    f"{path}:{line} {target}"


def test_monitor_loads_no_ceph_lxml_or_threading():
    """The action modules as they load: monitor's whole import graph, in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys; from rbdvm.ocf import agent; agent.handler('monitor'); "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'lxml', 'rados', 'rbd', 'threading'})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""


# a function longer than this does several things: split it where its parts have names
MAX_FUNCTION_LINES = 60


def test_no_function_of_the_product_is_longer_than_the_limit():
    long = []
    for module, path, _ in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines ({path}:{node.lineno})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_two_modules_import_each_other_even_through_others():
    """A cycle of module-level imports works or fails by the order modules are first
    imported (snapshots -> lifecycle -> inventory -> snapshots once failed alone)."""
    graph = {module: {t for _, t in imports(module, path, is_package, top_only=True) if t in KNOWN and t != module}
             for module, path, is_package in modules()}
    cycles, done = [], set()

    def visit(module, stack):
        if module in stack:
            cycles.append(" -> ".join(stack[stack.index(module):] + [module]))
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, stack + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
