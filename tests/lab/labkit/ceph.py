"""Ceph inside the nodes, as SEAPATH deploys it: a monitor on every node, one bluestore OSD
on each hypervisor, the mgr on the observer, pool rbd (size = hypervisors, min_size 1,
replicas on distinct hosts) and the least-privilege users (their keys made up front so
nodes get them at once). Every daemon runs in its node's namespaces: a crash of the node
takes its monitor and OSD with it, and `start_node` brings them back at boot.

The lab's admin runs from the switch namespace (the admin address on the bridge), so lab
checks reach Ceph whichever node is down or cut off."""

import json
import subprocess
import threading
import uuid

from . import configs, node
from . import layout as L
from .procs import LabError, Registry, run

REG = Registry(L.PIDS)
NETNS_ENTER = ["nsenter", f"--net=/run/netns/{L.SWITCH_NS}", "--"]
ADMIN = ["ceph", "--conf", str(L.CEPH_CONF)]
RBDVM_CAPS = ("mon", "profile rbd", "osd", f"profile rbd pool={L.POOL}")
# what docs/fencing.md asks a site to grant fence_rbdvm's user: blocklist a fenced node's
# clients, mark its OSDs down, keep its fence records
FENCE_CAPS = ("mon", 'allow r, allow command "osd blocklist", allow command "osd down"', "osd",
              f"allow rwx pool={L.POOL} object_prefix rbdvm.fence")
# what docs/day-two.md asks a site to grant `node drain --maintenance`'s user: read the
# cluster, and set or clear exactly the noout flag of a CRUSH host, nothing else
MAINT_CAPS = ("mon", 'allow r, allow command "osd set-group" with flags=noout, '
                     'allow command "osd unset-group" with flags=noout')
# what `rbdvm ceph-users` asks a site to grant the alert agent: add to the history, read the
# alive stamps
HISTORY_CAPS = ("mon", "allow r", "osd", f"allow rw pool={L.POOL} object_prefix rbdvm.events., "
                f"allow r pool={L.POOL} object_prefix rbdvm.alive.")
USERS = ((L.CEPH_USER, RBDVM_CAPS), (L.FENCE_USER, FENCE_CAPS), (L.MAINT_USER, MAINT_CAPS),
         (L.HISTORY_USER, HISTORY_CAPS))


def admin(*args, **kw):
    return run(NETNS_ENTER + ADMIN + list(args), **kw)


def gen_key() -> str:
    return run(["ceph-authtool", "--gen-print-key"]).stdout.strip()


def _authtool(*args) -> None:
    run(["ceph-authtool", *args])


def daemons(n: str) -> list:
    """[(kind, id)] of the Ceph daemons node n runs, in start order."""
    out = [("mon", n)]
    if n in L.OSDS:
        out.append(("osd", str(L.OSDS[n])))
    if n == L.MGR_NODE:
        out.append(("mgr", n))
    return out


def reg_name(kind: str, ident: str) -> str:
    return f"ceph-{kind}.{ident}"


def conf_path(n: str):
    return L.ceph_dir(n) / "ceph.conf"


def _in_node(n: str, argv, **kw):
    return node.sh(n, list(L.CLEAN_ENV) + list(map(str, argv)), **kw)


def start_daemon(n: str, kind: str, ident: str) -> None:
    """Start a daemon in its node; it forks once initialised, its PID file names it."""
    _in_node(n, [f"ceph-{kind}", "--conf", conf_path(n), "-i", ident], timeout=60)
    pid = int((L.ceph_dir(n) / "run" / f"ceph-{kind}.{ident}.pid").read_text())
    REG.register(reg_name(kind, ident), pid)


def _in_parallel(daemons) -> None:
    """[(node, kind, id)] started at once (each forks once initialised)."""
    errors = []

    def one(n, kind, ident):
        try:
            start_daemon(n, kind, ident)
        except BaseException as exc:     # reported below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=d) for d in daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def start_node(n: str) -> None:
    """Start node n's daemons again (after a crash or a fence): the OSD marks itself up. Those
    still running from an interrupted boot are left as they are, so a boot run again converges."""
    for kind, ident in daemons(n):
        if not REG.alive(reg_name(kind, ident)):
            start_daemon(n, kind, ident)


def write_files(fsid: str) -> None:
    L.ADMIN_DIR.mkdir(parents=True, exist_ok=True)
    L.CEPH_CONF.write_text(configs.admin_ceph_conf(fsid))
    for n in L.NODES:
        d = L.ceph_dir(n)
        for sub in ("run", "log", "crash", f"mon/ceph-{n}"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        conf_path(n).write_text(configs.ceph_conf(fsid, n))


def up(fsid: str, keys: dict, log) -> None:
    """keys: {Ceph user: key} of the users in USERS, made up front."""
    a = L.ADMIN_DIR
    mgr_dir = L.ceph_dir(L.MGR_NODE) / "mgr" / f"ceph-{L.MGR_NODE}"
    mgr_dir.mkdir(parents=True, exist_ok=True)
    _authtool("--create-keyring", a / "mon.keyring", "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
    _authtool("--create-keyring", a / "keyring", "--gen-key", "-n", "client.admin",
              "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *",
              "--cap", "mds", "allow *")
    _authtool("--create-keyring", mgr_dir / "keyring", "--gen-key", "-n", f"mgr.{L.MGR_NODE}",
              "--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *", "--cap", "mds", "allow *")
    for user, caps in USERS:
        cap_args = [x for kind, cap in zip(caps[::2], caps[1::2]) for x in ("--cap", kind, cap)]
        _authtool("--create-keyring", a / f"{user}.keyring", "-n", f"client.{user}",
                  "--add-key", keys[user], *cap_args)
    # mkfs imports these into the initial auth database: no round trips later
    for k in (a / "keyring", mgr_dir / "keyring", *(a / f"{user}.keyring" for user, _ in USERS)):
        _authtool(a / "mon.keyring", "--import-keyring", k)
    # the OSDs' stores first, offline (no monitor needed), while the monitors come up:
    # bluestore's mkfs takes seconds
    made = []
    for n, osd_id in L.OSDS.items():
        osd_uuid, osd_key = str(uuid.uuid4()), gen_key()
        data = L.ceph_dir(n) / "osd" / f"ceph-{osd_id}"
        data.mkdir(parents=True, exist_ok=True)
        _authtool("--create-keyring", data / "keyring", "-n", f"osd.{osd_id}", "--add-key", osd_key)
        made.append((n, osd_id, osd_uuid, osd_key))
    mkfs = [subprocess.Popen(node.enter(n) + list(L.CLEAN_ENV) + [
        "ceph-osd", "--conf", str(conf_path(n)), "-i", str(osd_id), "--mkfs", "--osd-uuid", osd_uuid,
        "--no-mon-config"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n, osd_id, osd_uuid, _ in made]
    monmap = a / "monmap"
    run(["monmaptool", "--create", "--fsid", fsid,
         *[x for n in L.MONS for x in ("--addv", n, L.mon_addr(n))], monmap])
    for n in L.MONS:
        run(["ceph-mon", "--conf", conf_path(n), "--mkfs", "-i", n, "--monmap", monmap,
             "--keyring", a / "mon.keyring"])
    monmap.unlink()
    (a / "mon.keyring").unlink()
    _in_parallel([(n, "mon", n) for n in L.MONS])
    log(f"ceph-mon started on {', '.join(L.MONS)}")
    for _, osd_id, osd_uuid, osd_key in made:
        secrets = a / f"osd-{osd_id}-secrets.json"
        secrets.write_text(json.dumps({"cephx_secret": osd_key}))
        got = admin("osd", "new", osd_uuid, str(osd_id), "-i", secrets).stdout.strip()
        secrets.unlink()
        if got != str(osd_id):
            raise LabError(f"expected osd.{osd_id}, the monitors allocated osd.{got}")
    for (n, osd_id, _, _), proc in zip(made, mkfs):
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise LabError(f"ceph-osd --mkfs of osd.{osd_id} on {n} failed:\n{out}")
    _in_parallel([(L.MGR_NODE, "mgr", L.MGR_NODE)] + [(n, "osd", str(osd_id)) for n, osd_id, _, _ in made])
    log("ceph-mgr + bluestore OSDs started")
    admin("osd", "pool", "create", L.POOL, "8", "8", "replicated")
    run(NETNS_ENTER + ["rbd", "--conf", L.CEPH_CONF, "pool", "init", L.POOL], timeout=60)
    log(f"pool {L.POOL} created and initialised for RBD")


def status(timeout: float = 15) -> dict:
    """Health, OSDs up, mgr availability and the monitors in quorum, as the admin sees them."""
    s = json.loads(admin("status", "--format", "json", timeout=timeout).stdout)
    osdmap = s["osdmap"].get("osdmap", s["osdmap"])
    return {
        "health": s["health"]["status"],
        "checks": sorted(s["health"].get("checks", {})),
        "osds_up": osdmap.get("num_up_osds"),
        "osds": osdmap.get("num_osds"),
        "mgr": s["mgrmap"]["available"],
        "quorum": sorted(s.get("quorum_names", [])),
    }


def stop(log) -> None:
    # OSDs first (they tell the monitors they go down), then the mgr, then the monitors
    for kind in ("osd", "mgr", "mon"):
        names = [reg_name(k, i) for n in L.NODES for k, i in daemons(n) if k == kind]
        for name in REG.stop(names, 10, log):
            log(f"stopped {name}")
