"""rbdvm installed on the lab's nodes as the Debian package operators install (issue 19):
built by debian/build-deb from a clean clone (lintian clean), installed with dpkg into each
node's own /usr and /var (the lab's node overlays), then Pacemaker runs and live-migrates a
VM through the packaged agent; an upgrade installed under the running VM keeps it running
and its monitors passing; `apt-get purge` leaves no file behind. Afterwards the nodes get
back the agent `rbdvm install-agent` writes, which the rest of the suite uses."""

import re
import subprocess
import time
from pathlib import Path

import pytest

from labkit import layout as L
from labkit import node, ops
from labkit.configs import device_policy
from labkit.procs import wait_for
from labkit.testing import agent, base_xml, boot_disk, fail_count, force_remove, other, qemu_pids, unique, where

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
N1, N2 = L.HYPERVISORS
PACKAGED = "/usr/bin/rbdvm"          # the lab's own `rbdvm` (/usr/local/bin) is the checkout's venv
AGENT = "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"
POLICY = "/etc/rbdvm/policy.toml"
UPGRADE = "0.1.0+lab1"


def run(*argv, cwd=None) -> str:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _next_version(deb: str, version: str, out: Path) -> str:
    """The package again as a later version whose agent code differs (one more line), made
    by unpacking and repacking it: a second build would cost the suite ~9 s more."""
    tree = out / "tree"
    run("dpkg-deb", "-R", deb, tree)
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
    agent = tree / "usr/lib/python3/dist-packages/rbdvm/ocf/agent.py"
    agent.write_text(agent.read_text() + f"# {version}\n")
    path = out / f"rbdvm_{version}_all.deb"
    run("dpkg-deb", "--root-owner-group", "-b", tree, path)
    return str(path)


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    """{version: path} of the committed tree's package, built from a clean clone, and of a
    later version of it."""
    tmp = tmp_path_factory.mktemp("deb")
    clone = tmp / "clone"
    run("git", "clone", "-q", REPO, clone)
    first = run(clone / "debian" / "build-deb", tmp / "dist").strip().splitlines()[-1]
    # the nodes see the host's /tmp: the packages are where dpkg on a node can read them
    return {"first": first, "upgrade": _next_version(first, UPGRADE, tmp)}


def on(n, *argv, check=True, timeout=120):
    return ops.on(n, *argv, check=check, timeout=timeout)


def installed_version(n) -> str:
    res = on(n, "dpkg-query", "-W", "-f=${Status} ${Version}", "rbdvm", check=False)
    return res.stdout.replace("install ok installed ", "") if "install ok installed" in res.stdout else ""


@pytest.fixture(scope="module")
def packaged_nodes(lab, debs):
    """Both nodes with the package installed by dpkg (as on a fresh node: no policy file yet;
    the lab's own policy put back afterwards, as an operator edits a conffile). At the end,
    whatever happened, the nodes get the checkout's agent back."""
    try:
        for n in L.NODES:
            on(n, "rm", "-f", POLICY)
            on(n, "env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", debs["first"])
        yield debs
    finally:
        for n in L.NODES:
            on(n, "env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--purge", "rbdvm", check=False)
            _write_lab_policy(n)
            on(n, "rbdvm", "install-agent")


def _write_lab_policy(n):
    # the node's edit of its conffile (the lab's guests log their serial port to a file)
    path = node.root_path(n, POLICY)
    path.write_text(device_policy())
    path.chmod(0o644)


def test_the_package_installs_the_agents_the_command_and_a_pristine_policy(packaged_nodes, tmp_path):
    for n in L.NODES:
        assert installed_version(n) == "0.1.0"
        owned = on(n, "dpkg-query", "-L", "rbdvm").stdout.split()
        for path in (PACKAGED, AGENT, "/usr/sbin/fence_rbdvm", "/usr/sbin/fence_rbdvm_check",
                     "/lib/systemd/system/fence_rbdvm_check.service",
                     "/lib/systemd/system/pacemaker.service.d/50-rbdvm.conf",
                     "/usr/share/bash-completion/completions/rbdvm",
                     "/usr/share/man/man1/rbdvm-create.1.gz", POLICY):
            assert path in owned, f"{path} not in the package on {n}"
        # the agent runs the packaged code, on Debian's python3, for any user
        header = node.root_path(n, AGENT).read_text()
        assert header.startswith("#!/usr/bin/python3 -S\n") and "the rbdvm package" in header, header
        assert "/usr/lib/python3/dist-packages" in header and str(REPO) not in header
        meta = on(n, "runuser", "-u", "nobody", "--", AGENT, "meta-data").stdout
        assert "<resource-agent" in meta and 'name="vm"' in meta
        fence = on(n, "runuser", "-u", "nobody", "--", "/usr/sbin/fence_rbdvm", "-o", "metadata").stdout
        assert "<resource-agent" in fence
        assert "rbdvm" in on(n, PACKAGED, "--version").stdout
        # the conffile is the built-in policy, every key commented out
        policy = node.root_path(n, POLICY).read_text()
        assert policy.startswith("# rbdvm's device policy") and all(
            line.startswith("#") or not line.strip() for line in policy.splitlines()), policy
        conffiles = on(n, "dpkg-query", "-W", "-f=${Conffiles}", "rbdvm").stdout
        assert POLICY in conffiles
        # the Ansible collection, where Ansible looks by default, runs on Debian's python3 with
        # the packaged library
        res = on(n, "env", f"HOME={tmp_path}", "ANSIBLE_NOCOLOR=1",
                 "ANSIBLE_COLLECTIONS_PATH=/usr/share/ansible/collections", str(L.VENV / "bin" / "ansible"),
                 "localhost", "-c", "local",
                 "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", "rbdvm.cluster.vm",
                 "-a", "command=list_vms", check=False)
        assert res.returncode == 0 and "SUCCESS" in res.stdout and '"list_vms"' in res.stdout, res.stdout + res.stderr
        # the self-check unit is shipped, not enabled
        assert not node.root_path(n, "/etc/systemd/system/multi-user.target.wants/fence_rbdvm_check.service").exists()
        _write_lab_policy(n)


def _packaged(*args, n=N1):
    return on(n, PACKAGED, *map(str, args), timeout=300)


def test_pacemaker_runs_and_live_migrates_a_vm_through_the_packaged_agent_and_an_upgrade_keeps_it(
        packaged_nodes):
    for n in L.NODES:
        _write_lab_policy(n)
    vm = unique()
    try:
        _packaged("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), "--live-migration",
                 "--pacemaker-params", "migration_transport=tcp")   # the lab has no ssh between nodes
        _packaged("enable", vm)
        ops.wait_serial(vm, "READY")
        x = where(vm)
        assert x and qemu_pids(x, vm)
        y = other(x)
        _packaged("migrate", vm, y)
        assert wait_for(60, lambda: where(vm) == y), "live-migrated"
        assert ops.boots(vm) == 1, "the guest did not reboot"
        pids = qemu_pids(y, vm)
        assert pids and not qemu_pids(x, vm)

        # an upgrade under the running VM: dpkg replaces the agent and the code it imports
        since = time.monotonic()
        for n in L.NODES:
            on(n, "env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", packaged_nodes["upgrade"])
            assert installed_version(n) == UPGRADE
            assert node.root_path(n, POLICY).read_text() == device_policy(), "the node's edit of its conffile is kept"
        # more than a monitor interval (rbdvm's default 10 s) passes with the new agent
        while time.monotonic() - since < 12:
            time.sleep(1)
            assert where(vm) == y and qemu_pids(y, vm) == pids, "the VM kept running through the upgrade"
        assert fail_count(vm, y) == 0 and fail_count(vm, x) == 0
        assert agent(y, "monitor", vm=vm).returncode == 0, "the upgraded agent's monitor"
        failed = on(N1, "crm_mon", "-1", "--output-as=xml").stdout
        assert "<failure " not in failed, failed
        # and it still moves, live, through the upgraded agent
        _packaged("migrate", vm, x)
        assert wait_for(60, lambda: where(vm) == x), "live-migrated back"
        assert ops.boots(vm) == 1
    finally:
        on(N1, PACKAGED, "remove", "--force", vm, check=False, timeout=300)
        force_remove(vm)


def test_apt_get_purge_leaves_no_file_behind(packaged_nodes):
    for n in L.NODES:
        owned = [p for p in on(n, "dpkg-query", "-L", "rbdvm").stdout.split() if p != "/."]
        files = [p for p in owned if node.root_path(n, p).is_file()]
        assert files, "the package is installed"
        on(n, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q", "rbdvm")
        assert installed_version(n) == ""
        status = on(n, "dpkg-query", "-W", "-f=${db:Status-Abbrev}", "rbdvm", check=False).stdout
        assert not status.strip() or status.startswith("un"), f"purged, not only removed: {status!r}"
        left = [p for p in files if node.root_path(n, p).exists()]
        assert left == [], f"left behind on {n}: {left}"
        # nor what the package made at install: byte code, the policy directory
        left = [p for p in owned if p.startswith("/usr/lib/python3/dist-packages/rbdvm")
                and node.root_path(n, p).exists()]
        assert left == [], f"left behind on {n}: {left}"
        assert not node.root_path(n, POLICY).exists()
