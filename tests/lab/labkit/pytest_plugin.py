"""The lab as a pytest plugin (loaded by pyproject's `-p labkit.pytest_plugin`; labkit is
on the path through pyproject's `pythonpath`).

`unit` tests need neither root nor the lab. `lab` tests get the session-wide lab: brought
up if it is not already up and healthy, torn down afterwards only if this session started
it. A lab that cannot start makes every lab test fail with the reason: never a skip.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from labkit import lifecycle

LAB_SRC = Path(__file__).resolve().parents[1]
LAB_CMD = str(LAB_SRC / "lab")


# what a `requires` marker may name: a program on PATH, or "python:MODULE" (Debian's
# bindings, seen by the venv through --system-site-packages); the package that brings it
REQUIREMENTS = {"qemu-img": "qemu-utils", "xmllint": "libxml2-utils", "crm_verify": "pacemaker-cli-utils",
                "python:rados": "python3-rados", "python:rbd": "python3-rbd", "python:libvirt": "python3-libvirt",
                "/usr/share/OVMF/OVMF_VARS_4M.fd": "ovmf", "mformat": "mtools",
                "dumpe2fs": "e2fsprogs", "mkfs.ext4": "e2fsprogs",
                "/usr/share/libvirt/schemas/domain.rng": "libvirt0", "systemd-analyze": "systemd",
                "man": "man-db", "/usr/bin/ansible-playbook": "ansible-core", "promtool": "prometheus",
                "prometheus": "prometheus"}


def missing_requirements(item) -> list:
    """What the item's `requires` markers name that this host lacks, as 'thing (package)'."""
    import importlib.util
    import os
    import shutil

    out = []
    for marker in item.iter_markers("requires"):
        for thing in marker.args:
            if thing not in REQUIREMENTS:
                raise pytest.UsageError(f"{item.nodeid}: requires({thing!r}) is not in labkit's REQUIREMENTS")
            if thing.startswith("python:"):
                present = importlib.util.find_spec(thing[7:]) is not None
            elif thing.startswith("/"):
                present = os.path.exists(thing)
            else:
                present = shutil.which(thing) is not None
            if not present:
                out.append(f"{thing} ({REQUIREMENTS[thing]})")
    return out


def pytest_runtest_setup(item):
    """A test that needs a host tool says so (marker `requires`); without it, it fails naming
    the package to install: never a skip, never a confusing error deep inside."""
    missing = missing_requirements(item)
    if missing:
        pytest.fail(f"this test needs {', '.join(missing)}: run `make deps` (tests/lab/packages.txt)", pytrace=False)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("lab"):
            item.fixturenames.insert(0, "lab")
    # the longest files first, so that workers sharing them (one lab each) end together; the
    # lab's own life cycle (down, stale restart) last: it restarts the lab. The suite keeps
    # this order (--no-loadscope-reorder)
    items.sort(key=lambda item: (item.get_closest_marker("lab_lifecycle") is not None,
                                 -LONG_FILES.get(item.path.name, 0)))


# seconds a file's tests took in the suite's one-at-a-time phase (a fresh clone, 2026-12-07):
# only an order, longest first; a file not named here runs after these, in collection order
LONG_FILES = {"test_guest_node.py": 240, "test_debian_package.py": 190, "test_uefi.py": 160,
              "test_hyperconverged.py": 120, "test_storage_fencing.py": 105, "test_cluster_lifecycle.py": 100,
              "test_agent_safety.py": 60, "test_monitoring.py": 50, "test_capacity.py": 45,
              "test_agent_cluster.py": 40, "test_trust.py": 35, "test_day_two.py": 35}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed lab test's report carries what diagnosing it needs: the cluster's view and
    the recent lines of every node's Pacemaker and libvirt logs and of the guests' serial
    consoles (a failure in CI is seen once, on a machine that is gone)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and item.get_closest_marker("lab"):
        for title, text in _lab_diagnostics(since=time.time() - 600):
            report.sections.append((f"lab: {title}", text))


def _tail(path: Path, lines: int = 40, keep=None, window: int = 64 * 1024) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - window))
        text = f.read().decode(errors="replace").splitlines()
    return "\n".join([line for line in text if keep is None or keep(line)][-lines:])


def _agent_line(line: str) -> bool:
    """What the resource agents said and how their actions ended: the 40 lines of a
    Pacemaker log's tail are mostly the CIB's own chatter, and an agent's reason for a
    failure minutes earlier is what diagnosing it needs."""
    return "VirtualDomain(" in line or "(log_finished)" in line or ("fence_" in line and "error" in line)


def _lab_diagnostics(since: float):
    from labkit import layout as L
    from labkit import ops

    try:
        res = ops.on(L.NODES[0], "crm_mon", "-1", "--inactive", "--include=failures", check=False, timeout=15)
        yield "crm_mon on " + L.NODES[0], (res.stdout + res.stderr).strip()
    except Exception as exc:        # noqa: BLE001 - a diagnostic never hides the failure
        yield "crm_mon", f"unavailable: {exc}"
    files = []
    for n in L.NODES:
        for folder in ("log-pacemaker", "log-libvirt"):
            files += [(f"{n} {p.relative_to(L.node_dir(n))}", p) for p in (L.node_dir(n) / folder).rglob("*")]
        log = L.node_dir(n) / "log-pacemaker" / "pacemaker.log"
        try:
            if log.is_file() and log.stat().st_mtime >= since:
                yield f"{n} agents' lines in log-pacemaker/pacemaker.log", \
                    _tail(log, 80, keep=_agent_line, window=16 * 1024 * 1024)
        except OSError:
            pass
    files += [(f"serial {p.name}", p) for p in L.SHARED.glob("*.serial")]
    for title, path in files:
        try:
            if path.is_file() and path.stat().st_mtime >= since:
                yield title, _tail(path)
        except OSError:
            continue


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_lifecycle: tears the lab down and up again; runs last")


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces, mounts, daemons)")
    started = False
    if not lifecycle.healthy():
        res = subprocess.run([LAB_CMD, "up"], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.fail(f"the lab did not come up (tests/lab/lab up, rc {res.returncode}):\n"
                        f"{res.stdout}\n{res.stderr}", pytrace=False)
        started = True
    yield LAB_CMD
    if started and os.environ.get("RBDVM_LAB_KEEP") != "1":
        subprocess.run([LAB_CMD, "down"], check=False)


@pytest.fixture(scope="session")
def agent_installed(lab):
    """`rbdvm install-agent` on every node, as an operator installs it."""
    from labkit import layout as L
    from labkit import ops

    for n in L.NODES:
        ops.on(n, "rbdvm", "install-agent")
    return "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"


@pytest.fixture
def cluster_vm(agent_installed):
    """A VM under the lab's Pacemaker cluster, started and READY; removed afterwards."""
    from labkit import testing

    yield from testing.cluster_vm_lifecycle()
