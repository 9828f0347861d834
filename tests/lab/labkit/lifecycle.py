"""Bring the whole lab up, tear it down, and tell how healthy it is."""

import os
import shutil
import subprocess
import threading
import time
import uuid

from . import ceph, configs, net, node
from . import layout as L
from .procs import LabError, Registry, kill_pids, pids_in_netns, run, wait_for

REG = Registry(L.PIDS)


class Clock:
    def __init__(self, tag: str, quiet: bool = False):
        self.t0, self.tag, self.quiet = time.monotonic(), tag, quiet

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{self.tag} {self.elapsed():7.3f}s] {msg}", flush=True)


# ------------------------------------------------------------------ status
def health() -> list:
    """[(part, ok, detail)] for every part of the lab."""
    parts = []
    if not L.STATE.is_dir():
        return [("lab", False, f"not up (no {L.STATE})")]
    parts.append(switch_health())
    parts.append(("ceph", *_ceph_health()))
    for n in L.NODES:
        parts.append((n, *_node_health(n)))
    return parts


def switch_health() -> tuple:
    """("switch", ok, detail): the namespaces and the cuts made in them. Local and instant,
    unlike the other parts (Ceph's status waits for a monitor election)."""
    missing = [ns for ns in L.ALL_NETNS if ns not in net.existing()]
    cuts = _cuts() if not missing else []
    return ("switch", not missing, f"missing namespaces {missing}" if missing
            else "bridge + ports" + (f"; {', '.join(cuts)}" if cuts else ""))


def _cuts() -> list:
    try:
        return net.cuts()
    except LabError:
        return []


def _ceph_health():
    """Healthy: every monitor in quorum, every OSD up, the mgr available, and Ceph's own
    health OK or WARN; the detail shows Ceph's health and the monitors in quorum."""
    dead = [ceph.reg_name(k, i) for n in L.NODES for k, i in ceph.daemons(n) if not REG.alive(ceph.reg_name(k, i))]
    try:
        s = ceph.status(timeout=10)
    except LabError as exc:
        return False, (f"not running: {', '.join(dead)}; " if dead else "") + str(exc).splitlines()[0]
    ok = (not dead and s["health"] in ("HEALTH_OK", "HEALTH_WARN") and s["quorum"] == sorted(L.MONS)
          and s["osds_up"] == s["osds"] == len(L.OSDS) and s["mgr"])
    detail = (f"{s['health']}{' ' + ','.join(s['checks']) if s['checks'] else ''}, "
              f"mons in quorum {','.join(s['quorum']) or 'none'}, osds up {s['osds_up']}/{s['osds']}, "
              f"mgr available {s['mgr']}")
    return ok, (f"not running: {', '.join(dead)}; " if dead else "") + detail


def _node_health(n: str):
    daemons = ("holder", "corosync", "pacemakerd") + (("libvirtd",) if n in L.HYPERVISORS else ())
    dead = [d for d in daemons if not REG.alive(f"{d}-{n}")]
    if dead:
        return False, f"not running: {', '.join(dead)}"
    problems = []
    if not node.quorate(n):
        problems.append("corosync not quorate")
    online = node.online_nodes(n)
    if n not in online:
        problems.append("pacemaker not online")
    if n in L.HYPERVISORS and not node.libvirt_up(n):
        problems.append("libvirtd socket missing")
    if problems:
        return False, "; ".join(problems)
    role = "libvirtd up" if n in L.HYPERVISORS else "observer (no hypervisor)"
    return True, f"corosync quorate, pacemaker sees online {online}, {role}"


def healthy() -> bool:
    return all(ok for _, ok, _ in health())


# ------------------------------------------------------------------ up
def up(keep_on_fail: bool = False) -> float:
    clock = Clock("up")
    if L.STATE.is_dir() and healthy():
        clock("lab already up and healthy")
        return 0.0
    down(quiet=True)
    clock("stale state cleaned")
    try:
        _up(clock)
    except BaseException as exc:
        print(f"lab up: FAILED: {exc}", flush=True)
        _print_log_tails()
        if not keep_on_fail:
            down(quiet=True)
        raise
    (L.STATE / "up.seconds").write_text(f"{clock.elapsed():.3f}\n")
    clock(f"lab up in {clock.elapsed():.3f} s")
    return clock.elapsed()


def _up(clock: Clock) -> None:
    for d in (L.PIDS, L.SHARED, L.LAB_SBIN):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copy2(L.LAB_SRC / "sbin" / L.FENCE_AGENT, L.LAB_SBIN / L.FENCE_AGENT)
    fsid = str(uuid.uuid4())
    keys = {user: ceph.gen_key() for user, _ in ceph.USERS}
    ceph.write_files(fsid)
    cib = configs.cib_seed(run(["cibadmin", "--empty"]).stdout)
    authkey = os.urandom(256)
    for n in L.NODES:
        node.write_files(n, fsid, keys, authkey, cib)
    clock("configuration written")

    net.create()
    clock("switch and namespaces created")
    for n in L.NODES:
        node.start_holder(n)
        node.prepare_run(n)
    clock("node namespaces mounted")

    ceph_error = []

    def ceph_up():
        try:
            ceph.up(fsid, keys, clock)
        except BaseException as exc:  # reported by the main thread
            ceph_error.append(exc)

    ceph_thread = threading.Thread(target=ceph_up, name="ceph-up")
    ceph_thread.start()
    try:
        _nodes_up(clock)
    finally:
        ceph_thread.join()
    if ceph_error:
        raise LabError(f"Ceph bring-up failed: {ceph_error[0]}")
    dead = [name for name in REG.names() if not REG.alive(name)]
    if dead:
        raise LabError(f"not running after bring-up: {', '.join(dead)}")
    # `up` returns when `status` says healthy (the mgr reports available a few seconds late)
    if not wait_for(60, healthy, 0.5):
        broken = [f"{part}: {detail}" for part, ok, detail in health() if not ok]
        raise LabError(f"not healthy 60 s after bring-up: {'; '.join(broken)}")
    clock("every part healthy")


def _nodes_up(clock: Clock) -> None:
    for n in L.NODES:
        node.start_corosync(n)
    for n in L.HYPERVISORS:
        node.start_libvirtd(n)
    for n in L.NODES:
        _must(30, lambda n=n: node.corosync_answers(n), f"{n}: corosync IPC not answering")
    for n in L.NODES:   # pacemakerd waits for membership and quorum itself
        node.start_pacemaker(n)
    for n in L.NODES:
        _must(30, lambda n=n: node.quorate(n), f"{n}: corosync not quorate")
    clock("corosync quorate on every node")
    for n in L.HYPERVISORS:
        _must(20, lambda n=n: node.libvirt_up(n), f"{n}: libvirtd socket missing")
    # libvirtd probes QEMU's capabilities on first use (~1.3 s): do it now, in parallel
    warm = [subprocess.Popen(node.enter(n) + ["virsh", "-q", "-c", "qemu:///system", "capabilities"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in L.HYPERVISORS]
    node.wait_joined(L.NODES[0])
    clock("pacemaker: every node online, DC idle")
    for p in warm:
        p.wait(timeout=60)
    clock("libvirtd up on both hypervisors, QEMU capabilities probed")


def _must(seconds, predicate, what) -> None:
    if not wait_for(seconds, predicate):
        raise LabError(f"{what} after {seconds} s")


def _print_log_tails(lines: int = 12) -> None:
    logs = []
    for n in L.NODES:
        d = L.node_dir(n)
        logs += [L.ceph_dir(n) / "log" / f"ceph-{kind}.{ident}.log" for kind, ident in ceph.daemons(n)]
        logs += [d / "holder.out", d / "corosync.out", d / "pacemakerd.out", d / "libvirtd.out",
                 d / "log-corosync" / "corosync.log", d / "log-pacemaker" / "pacemaker.log",
                 d / "log-libvirt" / "libvirtd.log"]
    for f in logs:
        try:
            text = f.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if text:
            print(f"--- tail {f}", flush=True)
            print("\n".join(text[-lines:]), flush=True)


# ------------------------------------------------------------------ down
def down(quiet: bool = False, keep_logs=None) -> dict:
    """Stop what the lab started (by PID), then sweep its namespaces and state. Idempotent."""
    clock = Clock("down", quiet)
    report = {"stopped": [], "leftovers": [], "netns": [], "state_removed": False}
    for n in L.NODES:
        _destroy_domains(n, clock)
    # pacemaker on both nodes together (a lone survivor would take the resources over), and
    # only once the DC is idle: a pending action makes the DC's own shutdown hang for 80 s
    for n in L.NODES:
        if REG.alive(f"pacemakerd-{n}") and REG.alive(f"holder-{n}"):
            if not wait_for(15, lambda n=n: node.dc_idle(n)):
                clock("WARN the DC is not idle after 15 s, stopping anyway")
            break
    report["stopped"] += REG.stop([f"pacemakerd-{n}" for n in L.NODES], 60, clock)
    report["stopped"] += REG.stop([f"{d}-{n}" for d in ("corosync", "libvirtd") for n in L.NODES], 15, clock)
    for kind in ("osd", "mgr", "mon"):
        report["stopped"] += REG.stop([ceph.reg_name(k, i) for n in L.NODES for k, i in ceph.daemons(n)
                                       if k == kind], 10, clock)
    report["stopped"] += REG.stop([f"holder-{n}" for n in L.NODES], 5, clock)
    if report["stopped"]:
        clock(f"stopped {' '.join(report['stopped'])}")
    # whatever still lives in the lab's namespaces (QEMU, daemons of a lab killed earlier)
    # was started by the lab
    left = pids_in_netns(L.ALL_NETNS)
    if left:
        report["leftovers"] = left
        clock(f"SIGKILL leftovers in the lab namespaces: {left}")
        kill_pids(left)
        if not wait_for(5, lambda: not pids_in_netns(L.ALL_NETNS)):
            clock(f"WARN still alive: {pids_in_netns(L.ALL_NETNS)}")
    # killed daemons stay zombies until PID 1 reaps them: wait so nothing is left behind
    if not wait_for(5, lambda: not any(REG.exists(n) for n in REG.names()), 0.05):
        clock("WARN some lab processes not reaped yet")
    report["netns"] = net.existing()
    net.delete(report["netns"])
    if report["netns"]:
        clock(f"deleted namespaces {' '.join(report['netns'])}")
    if keep_logs and L.STATE.is_dir():
        _keep_logs(keep_logs)
    if L.STATE.is_dir():
        shutil.rmtree(L.STATE)
        report["state_removed"] = True
    mounts = [line for line in open("/proc/self/mountinfo") if f" {L.LAB_DIR}" in line]
    if mounts:
        clock(f"WARN mounts under {L.LAB_DIR} in the root namespace: {mounts}")
    if not quiet or any(report.values()):
        print(f"[down {clock.elapsed():7.3f}s] down: {len(report['stopped'])} process(es) stopped, "
              f"{len(report['leftovers'])} leftover(s) killed, {len(report['netns'])} namespace(s) "
              f"deleted, state removed: {'yes' if report['state_removed'] else 'no'}", flush=True)
    return report


def _destroy_domains(n: str, clock: Clock) -> None:
    """libvirtd leaves QEMU running when it exits: destroy the guests through it first."""
    if not (REG.alive(f"libvirtd-{n}") and REG.alive(f"holder-{n}")):
        return
    virsh = node.enter(n) + ["virsh", "-q", "-c", "qemu:///system"]
    names = run(virsh + ["list", "--name"], timeout=10, check=False).stdout.split()
    for dom in names:
        if run(virsh + ["destroy", dom], timeout=10, check=False).returncode == 0:
            clock(f"destroyed domain {dom} on {n}")


def _keep_logs(dest) -> None:
    os.makedirs(dest, exist_ok=True)
    for f in L.STATE.rglob("*"):
        if f.is_file() and (f.suffix in (".log", ".out")):
            shutil.copy2(f, os.path.join(dest, str(f.relative_to(L.STATE)).replace("/", "_")))
