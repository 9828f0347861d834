"""Single-node Ceph in its own network namespace: 1 mon, 1 mgr, 1 memstore OSD, pool rbd,
and the least-privilege client.rbdvm (its key made up front so nodes get it at once)."""

import json
import uuid

from . import layout as L
from .procs import LabError, Registry, run

REG = Registry(L.PIDS)
NETNS_ENTER = ["nsenter", f"--net=/run/netns/{L.netns('ceph')}", "--"]
ADMIN = ["ceph", "--conf", str(L.CEPH_CONF)]
RBDVM_CAPS = ("mon", "profile rbd", "osd", f"profile rbd pool={L.POOL}")
# what docs/fencing.md asks a site to grant fence_rbdvm's user
FENCE_CAPS = ("mon", 'allow r, allow command "osd blocklist"', "osd",
              f"allow rwx pool={L.POOL} object_prefix rbdvm.fence")
# what docs/day-two.md asks a site to grant `node drain --maintenance`'s user: read the
# cluster, and set or clear exactly the noout flag of a CRUSH host, nothing else
MAINT_CAPS = ("mon", 'allow r, allow command "osd set-group" with flags=noout, '
                     'allow command "osd unset-group" with flags=noout')
USERS = ((L.CEPH_USER, RBDVM_CAPS), (L.FENCE_USER, FENCE_CAPS), (L.MAINT_USER, MAINT_CAPS))


def cx(argv, **kw):
    """Run a command in the Ceph namespace (root mount namespace)."""
    return run(NETNS_ENTER + list(argv), **kw)


def admin(*args, **kw):
    return cx(ADMIN + list(args), **kw)


def gen_key() -> str:
    return run(["ceph-authtool", "--gen-print-key"]).stdout.strip()


def _authtool(*args) -> None:
    run(["ceph-authtool", *args])


def _daemon(kind: str, ident: str, *extra) -> None:
    """Start a Ceph daemon; it forks once initialised, its PID file names the daemon."""
    cx(list(L.CLEAN_ENV) + [f"ceph-{kind}", "--conf", L.CEPH_CONF, "-i", ident, *extra],
       timeout=60)
    pid = int((L.CEPH_DIR / "run" / f"ceph-{kind}.{ident}.pid").read_text())
    REG.register(f"ceph-{kind}", pid)


def up(fsid: str, keys: dict, log) -> None:
    """keys: {Ceph user: key} of client.rbdvm and fence_rbdvm's user, made up front."""
    d = L.CEPH_DIR
    for sub in ("run", "log", "crash", "mon/ceph-a", "mgr/ceph-x", "osd/ceph-0"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    _authtool("--create-keyring", d / "mon.keyring", "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
    _authtool("--create-keyring", d / "keyring", "--gen-key", "-n", "client.admin",
              "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *",
              "--cap", "mds", "allow *")
    _authtool("--create-keyring", d / "mgr/ceph-x/keyring", "--gen-key", "-n", "mgr.x",
              "--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *", "--cap", "mds", "allow *")
    for user, caps in USERS:
        cap_args = [a for kind, cap in zip(caps[::2], caps[1::2]) for a in ("--cap", kind, cap)]
        _authtool("--create-keyring", d / f"{user}.keyring", "-n", f"client.{user}",
                  "--add-key", keys[user], *cap_args)
    # mkfs imports these into the initial auth database: no round trips later
    for k in ("keyring", "mgr/ceph-x/keyring", *(f"{user}.keyring" for user, _ in USERS)):
        _authtool(d / "mon.keyring", "--import-keyring", d / k)
    run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", L.MON_ADDR, d / "monmap"])
    run(["ceph-mon", "--conf", L.CEPH_CONF, "--mkfs", "-i", "a", "--monmap", d / "monmap",
         "--keyring", d / "mon.keyring"])
    (d / "monmap").unlink()
    (d / "mon.keyring").unlink()
    _daemon("mon", "a")
    log("ceph-mon started")
    _daemon("mgr", "x")
    osd_uuid = str(uuid.uuid4())
    osd_key = gen_key()
    secrets = d / "osd-secrets.json"
    secrets.write_text(json.dumps({"cephx_secret": osd_key}))
    osd_id = admin("osd", "new", osd_uuid, "-i", secrets).stdout.strip()
    secrets.unlink()
    if osd_id != "0":
        raise LabError(f"expected osd.0, the monitor allocated osd.{osd_id}")
    _authtool("--create-keyring", d / "osd/ceph-0/keyring", "-n", "osd.0", "--add-key", osd_key)
    cx(list(L.CLEAN_ENV) + ["ceph-osd", "--conf", L.CEPH_CONF, "-i", "0", "--mkfs",
                            "--osd-uuid", osd_uuid], timeout=60)
    _daemon("osd", "0")
    log("ceph-mgr + ceph-osd started")
    # osd.0 under CRUSH host node1 (its only host, so placement is the same)
    admin("osd", "crush", "add-bucket", L.OSD_HOST, "host")
    admin("osd", "crush", "move", L.OSD_HOST, "root=default")
    admin("osd", "crush", "create-or-move", "osd.0", "0.004", f"host={L.OSD_HOST}")
    admin("osd", "pool", "create", L.POOL, "8", "8", "replicated")
    cx(["rbd", "--conf", L.CEPH_CONF, "pool", "init", L.POOL], timeout=60)  # waits for osd.0
    log(f"pool {L.POOL} created and initialised for RBD")


def status() -> dict:
    """Health, OSDs up and mgr availability, as the admin sees them."""
    out = admin("status", "--format", "json", timeout=15).stdout
    s = json.loads(out)
    return {
        "health": s["health"]["status"],
        "osds_up": s["osdmap"].get("num_up_osds", s["osdmap"].get("osdmap", {}).get("num_up_osds")),
        "mgr": s["mgrmap"]["available"],
    }


def stop(log) -> None:
    # the OSD first (it tells the mon it goes down), then mgr, then mon
    for kind in ("osd", "mgr", "mon"):
        for name in REG.stop([f"ceph-{kind}"], 10, log):
            log(f"stopped {name}")


