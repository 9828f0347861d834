"""rbdvm installed on the lab's nodes as the Debian package operators install (issue 19):
built by debian/build-deb from a clean clone (lintian clean; labkit.debbuild), installed with dpkg into each
node's own /usr and /var (the lab's node overlays), then Pacemaker runs and live-migrates a
VM through the packaged agent; an upgrade installed under the running VM keeps it running
and its monitors passing; `apt-get purge` leaves no file behind. Afterwards the nodes get
back the agent `rbdvm install-agent` writes, which the rest of the suite uses."""

import re
import subprocess
import time
from pathlib import Path

import pytest

from labkit import debbuild, node, ops, storagefence
from labkit import layout as L
from labkit.configs import device_policy
from labkit.procs import wait_for
from labkit.testing import (
    agent,
    base_xml,
    boot_disk,
    fail_count,
    force_remove,
    make_vm,
    other,
    qemu_pids,
    unique,
    where,
)

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
N1, N2 = L.HYPERVISORS
PACKAGED = "/usr/bin/rbdvm"          # the lab's own `rbdvm` (/usr/local/bin) is the checkout's venv
AGENT = "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"
POLICY = "/etc/rbdvm/policy.toml"
CODE = "/usr/lib/rbdvm/agent-code"
UPGRADE = "0.1.0+lab1"


def run(*argv, cwd=None) -> str:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


MARK = f" [{UPGRADE}]"


def _next_version(deb: str, version: str, out: Path) -> str:
    """The package again as a later version whose agent code differs, made by unpacking and
    repacking it (a second build would cost the suite ~9 s more). Its meta-data says so
    twice: in a parameter's description, from a module the agent imports as it starts
    (agentparams), and in its long description, from the module meta-data loads when it runs
    (metadata). An agent that ran half of each version shows one mark."""
    tree = out / "tree"
    run("dpkg-deb", "-R", deb, tree)
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
    code = tree / "usr/lib/python3/dist-packages/rbdvm"
    for module, line in (("helpers/core/agentparams.py", f"PARAMS[0].short += {MARK!r}"),
                         ("ocf/metadata.py", f"LONGDESC += {MARK!r}")):
        (code / module).write_text((code / module).read_text() + line + "\n")
    path = out / f"rbdvm_{version}_all.deb"
    run("dpkg-deb", "--root-owner-group", "-b", tree, path)
    return str(path)


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    """{version: path} of the committed tree's package, built from a clean clone (by the
    first phase of the suite already: test_debian_build.py), and of a later version of it."""
    tmp = tmp_path_factory.mktemp("deb")
    first = str(debbuild.package())
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
                     "/usr/share/man/man1/rbdvm-create.1.gz", "/usr/share/man/man7/ocf_rbdvm_VirtualDomain.7.gz",
                     "/usr/share/man/man8/fence_rbdvm.8.gz", "/usr/share/man/man8/fence_rbdvm_check.8.gz", POLICY):
            assert path in owned, f"{path} not in the package on {n}"
        _names_are_whole(n, [p for p in owned if p.startswith("/usr/share/man/") and p.endswith(".gz")])
        assert "libvirt-clients" in on(n, "dpkg-query", "-W", "-f=${Depends}", "rbdvm").stdout, "console needs virsh"
        # the agent runs the packaged code, on Debian's python3, for any user
        header = node.root_path(n, AGENT).read_text()
        assert header.startswith("#!/usr/bin/python3 -S\n") and "the rbdvm package" in header, header
        assert f"os.path.realpath('{CODE}/current')" in header and str(REPO) not in header
        # the copy the agents run, switched to by the postinst: a directory of the package's code
        current = on(n, "readlink", "-e", f"{CODE}/current").stdout.strip()
        assert current.startswith(CODE + "/") and node.root_path(n, f"{current}/rbdvm/ocf/agent.py").is_file()
        # install-agent would overwrite dpkg's files: refused, the package's agent left as it was
        refused = on(n, "rbdvm", "install-agent", "--json", check=False)
        assert refused.returncode == 4 and '"AGENT_PACKAGED"' in refused.stdout, refused.stdout + refused.stderr
        assert node.root_path(n, AGENT).read_text() == header
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


def _names_are_whole(n, pages):
    """Each man page's NAME line is a whole sentence, never cut with '...' (click cuts a
    command's short help at 45 characters)."""
    for page in pages:
        text = on(n, "zcat", page).stdout
        named = text.split(".SH NAME\n", 1)[1].split("\n", 1)[0]
        assert " \\- " in named and not named.rstrip().endswith("..."), f"{page}: {named}"


def _packaged(*args, n=N1):
    return on(n, PACKAGED, *map(str, args), timeout=300)


def _held_agent(n, tmp_path) -> subprocess.Popen:
    """The installed agent's meta-data as a tool starts it, held after its start (it has
    read its code's link and imported its entry point and parameters) until a line comes on
    its stdin; then its action imports the rest."""
    text = node.root_path(n, AGENT).read_text()
    assert text.count("sys.exit(main())") == 1
    held = tmp_path / f"held-agent-{n}"
    held.write_text(text.replace("sys.exit(main())", "print('held', file=sys.stderr, flush=True)\n"
                                 "sys.stdin.readline()\nsys.exit(main())"))
    held.chmod(0o755)
    proc = subprocess.Popen(node.enter(n) + list(L.CLEAN_ENV) + [str(held), "meta-data"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == "held\n"
    return proc


def test_pacemaker_runs_and_live_migrates_a_vm_through_the_packaged_agent_and_an_upgrade_keeps_it(
        packaged_nodes, tmp_path):
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

        # an upgrade under the running VM: dpkg replaces the agent and the code it imports,
        # while an agent that started before it is held between its start and its action
        held = _held_agent(N1, tmp_path)
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
        out, err = held.communicate("\n", timeout=60)
        assert held.returncode == 0 and "<resource-agent" in out, err
        assert out.count(MARK) == 0, "the agent started before the upgrade ran the old version, whole"
        after = on(N1, AGENT, "meta-data").stdout
        assert after.count(MARK) == 2, "an agent started after it runs the new version, whole"
        failed = on(N1, "crm_mon", "-1", "--output-as=xml").stdout
        assert "<failure " not in failed, failed
        # and it still moves, live, through the upgraded agent
        _packaged("migrate", vm, x)
        assert wait_for(60, lambda: where(vm) == x), "live-migrated back"
        assert ops.boots(vm) == 1
    finally:
        on(N1, PACKAGED, "remove", "--force", vm, check=False, timeout=300)
        force_remove(vm)


# systemd as the maintainer scripts see it, scripted (the lab runs no systemd; this machine
# cannot run one): the self-check's unit enabled and running, every call recorded. The
# scripts themselves, deb-systemd-invoke and deb-systemd-helper are the real ones.
SYSTEMCTL = """#!/bin/sh
echo "$*" >> {log}
case " $* " in
  *" is-enabled "*) echo enabled ;;
esac
exit 0
"""
UNIT = "fence_rbdvm_check.service"


def _dpkg_under_systemd(n, deb, tmp_path) -> list:
    """dpkg -i DEB on node n where systemd seems to run (its /run/systemd/system, in a mount
    namespace of the call's own, where no policy-rc.d forbids service actions); returns the
    systemctl calls the maintainer scripts made."""
    shim, log = tmp_path / "systemd-bin", tmp_path / f"systemctl-{n}.log"
    shim.mkdir(exist_ok=True)
    (shim / "systemctl").write_text(SYSTEMCTL.format(log=log))
    (shim / "systemctl").chmod(0o755)
    log.write_text("")
    on(n, "unshare", "--mount", "sh", "-c",
       'mount -t tmpfs rbdvm-test /run && mkdir -p /run/systemd/system /run/lock && '
       # this machine's image denies every service action (Docker's policy-rc.d); a node has none
       '{ [ ! -e /usr/sbin/policy-rc.d ] || mount --bind /dev/null /usr/sbin/policy-rc.d; } && '
       f'exec env PATH={shim}:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive dpkg -i "$0"', deb,
       timeout=300)
    return log.read_text().splitlines()


def test_an_upgrade_leaves_the_self_check_running_and_a_fence_right_after_ends_the_qemus(
        packaged_nodes, tmp_path):
    """The package once stopped the self-check before every upgrade and never started it
    again (dh_installsystemd --no-start): a storage-fenced node then kept its guests alive.
    Here node2 runs the older package with the self-check as its service manager would run
    it; the upgrade asks systemd for no stop and for a restart, the self-check runs through
    the unpack, and once restarted (what systemd does with that call) it ends the QEMUs of a
    fence that comes right after."""
    on(N2, "env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", packaged_nodes["first"])
    for n in L.NODES:
        _write_lab_policy(n)
    vm = unique()
    make_vm(vm)
    node.start_fence_check(N2)
    try:
        calls = _dpkg_under_systemd(N2, packaged_nodes["upgrade"], tmp_path)
        assert installed_version(N2) == UPGRADE
        assert node.REG.alive(f"fencecheck-{N2}"), "the self-check ran through the unpack"
        assert not [c for c in calls if UNIT in c and " stop " in f" {c} "], calls
        # one restart call names every unit of the package to restart (the exporter's too)
        assert [c for c in calls if "restart" in c.split() and UNIT in c.split()], \
            f"the upgrade asks systemd to restart the running self-check: {calls}"
        assert "--system daemon-reload" in calls, "the pacemaker.service drop-in takes effect at once"
        node.stop_fence_check(N2)          # the restart systemd was asked for: the new code runs
        node.start_fence_check(N2)
        assert agent(N2, "start", vm=vm).returncode == 0
        assert qemu_pids(N2, vm)
        off = on(N1, "fence_rbdvm", "-o", "off", "-n", N2, check=False)
        assert off.returncode == 0, off.stderr
        assert wait_for(30, lambda: not qemu_pids(N2, vm)), "the fenced node's QEMU was ended"
    finally:
        node.stop_fence_check(N2)
        storagefence.unfence_all()
        agent(N2, "stop", vm=vm)
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
        assert not node.root_path(n, CODE).exists(), "the agents' copies of the code, made by the postinst"
