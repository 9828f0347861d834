"""A lab node: a holder process owning the node's mount + UTS namespaces inside its network
namespace, and the node's daemons started inside them: corosync and Pacemaker everywhere,
libvirtd on the hypervisors, and Ceph's (labkit/ceph.py)."""

import os
import shutil
import stat
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import configs as C
from . import layout as L
from .procs import LabError, Registry, run, wait_for

REG = Registry(L.PIDS)


def holder(node: str) -> int:
    pid = REG.pid(f"holder-{node}")
    if pid is None:
        raise LabError(f"{node} is not running (no holder process): run `tests/lab/lab up`")
    return pid


def enter(node: str, cwd=None) -> list:
    """argv prefix that runs a command inside the node's namespaces (in `cwd` if given)."""
    wd = [f"--wd={cwd}"] if cwd else []
    return ["nsenter", "-t", str(holder(node)), "-n", "-m", "-u", *wd, "--"]


def sh(node: str, argv, **kw):
    return run(enter(node) + list(argv), **kw)


def root_path(node: str, path: str) -> Path:
    """A path as the node sees it, reachable from the host through the holder's root."""
    return Path(f"/proc/{holder(node)}/root") / path.lstrip("/")


def _spawn_in(node: str, name: str, argv, extra_env=()) -> int:
    with open(L.node_dir(node) / f"{name.split('-')[0]}.out", "ab") as out:
        proc = subprocess.Popen(enter(node) + list(L.CLEAN_ENV) + list(extra_env) + list(argv),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    REG.register(name, proc.pid)
    return proc.pid


def start_holder(node: str) -> None:
    d = L.node_dir(node)
    with open(d / "holder.out", "ab") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", L.netns(node), "unshare", "--mount", "--uts",
             "--propagation", "private", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    own_mnt = os.readlink("/proc/self/ns/mnt")

    def unshared():
        return (Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"
                and os.readlink(f"/proc/{proc.pid}/ns/mnt") != own_mnt)

    if not wait_for(5, unshared, 0.02):
        raise LabError(f"holder of {node} did not start: {(d / 'holder.out').read_text()}")
    REG.register(f"holder-{node}", proc.pid)
    _mount_node(node)


def _mount_node(node: str) -> None:
    d = L.node_dir(node)
    for src, target in L.NODE_BINDS:   # mount points must exist on the host
        if src != "hosts":
            Path(target).mkdir(parents=True, exist_ok=True)
    mnt = ["nsenter", "-t", str(holder(node)), "-m", "-u", "--"]
    run(mnt + ["hostname", node])
    # the node's own /usr and /var over the host's (pacemaker-fenced looks for fence agents
    # only in /usr/sbin: the lab's is in the layer under the node's)
    for target, name, lab_layer in L.NODE_OVERLAYS:
        upper, work = d / name, d / f"{name}.work"
        for path in (upper, work):
            path.mkdir(exist_ok=True)
        lower = f"{lab_layer}:{target}" if lab_layer else target
        run(mnt + ["mount", "-t", "overlay", "overlay", "-o",
                   f"lowerdir={lower},upperdir={upper},workdir={work}", target])
    for src, target in L.NODE_BINDS:
        run(mnt + ["mount", "--bind", d / src, target])
    for path, mode in L.NODE_TMPFS:
        run(mnt + ["mount", "-t", "tmpfs", "-o", f"mode={mode}", "tmpfs", path])


def prepare_run(node: str) -> None:
    """Volatile directories the daemons expect in /run (again after every power cut)."""
    sh(node, ["mkdir", "-p", "/run/lock", "/run/resource-agents", "/run/libvirt"])
    sh(node, ["install", "-d", "-o", "hacluster", "-g", "haclient", "-m", "0750", "/run/crm"])


def start_corosync(node: str) -> None:
    _spawn_in(node, f"corosync-{node}", ["corosync", "-f"])


def start_libvirtd(node: str) -> None:
    _spawn_in(node, f"libvirtd-{node}", [
        L.SYSTEM_PYTHON, L.LAB_SRC / "reaper.py", "/usr/sbin/libvirtd", "--listen",
        "--config", "/etc/libvirt/libvirtd.conf", "--pid-file", "/run/libvirt/libvirtd.pid"])


def start_pacemaker(node: str) -> None:
    _spawn_in(node, f"pacemakerd-{node}", ["pacemakerd"],
              extra_env=["PCMK_logfile=/var/log/pacemaker/pacemaker.log", "PCMK_logfacility=none"])


# ------------------------------------------------------------------ health of a node
# Every cluster query runs under a timeout: crmadmin was seen spinning forever while
# pacemaker starts.
def corosync_answers(node: str) -> bool:
    return sh(node, ["corosync-cmapctl", "-g", "totem.cluster_name"], timeout=10, check=False).returncode == 0


def quorate(node: str) -> bool:
    out = sh(node, ["corosync-quorumtool", "-s"], timeout=10, check=False).stdout
    return any(line.startswith("Quorate:") and "Yes" in line for line in out.splitlines())


def libvirt_up(node: str) -> bool:
    return root_path(node, "/run/libvirt/libvirt-sock").is_socket()


def cluster_status(node: str):
    """crm_mon's XML as seen from `node`, or None."""
    res = sh(node, ["crm_mon", "-1", "--output-as=xml"], timeout=10, check=False)
    if res.returncode != 0:
        return None
    try:
        return ET.fromstring(res.stdout)
    except ET.ParseError:
        return None


def online_nodes(node: str) -> list:
    """The cluster's member nodes online (a guest node, type remote, is the VM's, not the lab's)."""
    x = cluster_status(node)
    if x is None or x.find("summary/current_dc[@present='true']") is None:
        return []
    return sorted(n.get("name") for n in x.iterfind("nodes/node")
                  if n.get("online") == "true" and n.get("pending") == "false" and n.get("type", "member") == "member")


def dc_idle(node: str) -> bool:
    """The DC has no transition in flight: shutting down during one hangs for 80 s."""
    for attempt in range(2):
        dc = sh(node, ["crmadmin", "-D", "-q"], timeout=10, check=False)
        name = (dc.stdout + dc.stderr).strip()
        if dc.returncode != 0 or not name:
            return False
        st = sh(node, ["crmadmin", "-S", name, "-q"], timeout=10, check=False)
        if (st.stdout + st.stderr).strip() != "S_IDLE":
            return False
        if attempt == 0:
            time.sleep(0.2)
    return True


def wait_joined(node: str, timeout: float = 90) -> None:
    if not wait_for(timeout, lambda: online_nodes(node) == sorted(L.NODES)):
        raise LabError(f"{node}: not every node online after {timeout}s: {online_nodes(node)}")
    if not wait_for(60, lambda: dc_idle(node)):
        raise LabError(f"{node}: the DC did not become idle within 60 s")


def set_link(node: str, up: bool) -> None:
    """The node's own network interface: down while it is powered off (a dead node answers
    nothing, not even a refused connection), up when it boots."""
    sh(node, ["ip", "link", "set", "eth0", "up" if up else "down"])


def boot(node: str) -> None:
    """Power a crashed or fenced node back on and wait until it has rejoined the cluster. Its
    services come up side by side, as a booting host's do: corosync forms its membership
    while the Ceph daemons start (the OSD's start, ~2 s, no longer delays the join)."""
    from . import ceph

    def unless_running(name, start):
        # what an interrupted boot started is left running: booting again converges
        if not REG.alive(f"{name}-{node}"):
            start(node)

    prepare_run(node)
    set_link(node, True)
    unless_running("corosync", start_corosync)
    if node in L.HYPERVISORS:
        unless_running("libvirtd", start_libvirtd)
    ceph.start_node(node)
    if not wait_for(30, lambda: quorate(node)):
        raise LabError(f"{node}: corosync not quorate after 30 s")
    unless_running("pacemakerd", start_pacemaker)
    if node in L.HYPERVISORS and not wait_for(20, lambda: libvirt_up(node)):
        raise LabError(f"{node}: libvirtd socket missing after 20 s")
    wait_joined(node)


def start_fence_check(node: str, interval: float = 1.0) -> None:
    """fence_rbdvm_check in a loop on the node, as a site's service manager would run it
    (its log: the node's fencecheck.out; a crash ends it with everything else)."""
    _spawn_in(node, f"fencecheck-{node}", ["/usr/sbin/fence_rbdvm_check", "--interval", str(interval)])


def stop_fence_check(node: str) -> None:
    REG.stop([f"fencecheck-{node}"], 5)


def crash(node: str) -> None:
    """Pull the plug: exactly what the fence agent does to a node."""
    holder(node)
    run([L.LAB_SBIN / L.FENCE_AGENT, "-o", "off", "-n", node, "--state-dir", L.STATE])


def write_files(node: str, fsid: str, keys: dict, authkey: bytes, cib: str) -> None:
    d = L.node_dir(node)
    for src, _ in L.NODE_BINDS:
        if src != "hosts":
            (d / src).mkdir(parents=True, exist_ok=True)
    (d / "etc-corosync" / "uidgid.d").mkdir(exist_ok=True)
    (d / "etc-corosync" / "corosync.conf").write_text(C.corosync_conf())
    _write(d / "etc-corosync" / "authkey", authkey, 0o400)
    for sub in ("", "cib", "pengine", "blackbox", "cores"):
        _hacluster_dir(d / "var-lib-pacemaker" / sub, 0o750)
    _hacluster_dir(d / "log-pacemaker", 0o770)
    cib_path = d / "var-lib-pacemaker" / "cib" / "cib.xml"
    _write(cib_path, cib.encode(), 0o600)
    shutil.chown(cib_path, "hacluster", "haclient")
    (d / "etc-libvirt" / "libvirtd.conf").write_text(C.libvirtd_conf(node))
    (d / "etc-libvirt" / "qemu.conf").write_text(C.qemu_conf(node))
    secrets = d / "etc-libvirt" / "secrets"
    secrets.mkdir(exist_ok=True)
    # the secret driver loads these at start: QEMU's librbd gets client.rbdvm's key at once
    _write(secrets / f"{L.SECRET_UUID}.xml", C.libvirt_secret_xml().encode(), 0o600)
    _write(secrets / f"{L.SECRET_UUID}.base64", keys[L.CEPH_USER].encode(), 0o600)
    (d / "etc-ceph" / "ceph.conf").write_text(C.node_ceph_conf(fsid))
    for user, key in keys.items():
        keyring = d / "etc-ceph" / f"ceph.client.{user}.keyring"
        _write(keyring, C.client_keyring(key, user).encode(), 0o600)
        if user == L.HISTORY_USER:
            # the alert agent runs as hacluster
            keyring.chmod(0o640)
            shutil.chown(keyring, "root", "haclient")
    (d / "hosts").write_text(C.hosts())
    if node not in L.HYPERVISORS:
        _uninstall_hypervisor(d)
    _write(d / "etc-rbdvm" / "policy.toml", C.device_policy().encode(), 0o644)
    # the hypervisor's rbdvm command: the project's venv, as an operator would install it
    link = d / "usr-local-bin" / "rbdvm"
    if not link.is_symlink():
        link.symlink_to(L.VENV / "bin" / "rbdvm")


# what makes a node a hypervisor: libvirt's daemons (ocf/hypervisor.py looks for them)
HYPERVISOR_DAEMONS = ("/usr/sbin/libvirtd", "/usr/sbin/virtqemud")


def _uninstall_hypervisor(d: Path) -> None:
    """The observer has no hypervisor: libvirt's daemons removed from its /usr (overlay
    whiteouts in the node's own layer), as on a machine where they were never installed."""
    for path in HYPERVISOR_DAEMONS:
        white = d / "usr" / path.removeprefix("/usr/")
        white.parent.mkdir(parents=True, exist_ok=True)
        if not white.exists():
            os.mknod(white, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _hacluster_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    shutil.chown(path, "hacluster", "haclient")
