"""Names, addresses and paths of the lab: declared here once, used by every other module."""

import os
from pathlib import Path

# Daemons and admin tools live in sbin; a login shell of a non-root user may lack it.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
os.environ["PATH"] = ":".join(
    [d for d in _SBIN if d not in os.environ.get("PATH", "").split(":")] + [os.environ.get("PATH", "/usr/bin:/bin")])

REPO = Path(__file__).resolve().parents[3]
LAB_SRC = REPO / "tests" / "lab"
# Independent labs on one machine (the suite runs its one-at-a-time tests on two): each has
# its own state directory, namespaces and subnet; instance 0 is the lab of every tool.
# RBDVM_LAB_PER_WORKER=1: each pytest-xdist worker (gwN) has lab N, and what it runs
# (`tests/lab/lab`, the lab fixture's) inherits that choice.
if os.environ.get("RBDVM_LAB_PER_WORKER") == "1" and os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    os.environ["RBDVM_LAB_INSTANCE"] = os.environ["PYTEST_XDIST_WORKER"][2:]
INSTANCE = int(os.environ.get("RBDVM_LAB_INSTANCE", "0"))
if not 0 <= INSTANCE <= 9:
    raise SystemExit(f"RBDVM_LAB_INSTANCE={INSTANCE}: a lab instance is 0 to 9")
_SUFFIX = str(INSTANCE) if INSTANCE else ""
LAB_DIR = Path(os.environ.get("RBDVM_LAB_DIR", f"/tmp/rbdvm-lab{_SUFFIX}"))
STATE = LAB_DIR / "state"
PIDS = STATE / "pids"
SHARED = STATE / "shared"          # visible from every node (serial logs, images)
LAB_USR = STATE / "usr"            # the lab's own layer under every node's /usr (its fence agent)
LAB_SBIN = LAB_USR / "sbin"
ADMIN_DIR = STATE / "admin"        # the lab's admin view of Ceph (conf, admin keyring)
CEPH_CONF = ADMIN_DIR / "ceph.conf"
VENV = Path(os.environ.get("RBDVM_VENV", REPO / ".venv"))
SYSTEM_PYTHON = "/usr/bin/python3"  # the only interpreter with the rados/rbd bindings

# 10.77.<instance>.0/24 exists only inside the lab's network namespaces: nothing is added
# to the root namespace and no namespace has a default route.
NET = f"10.77.{INSTANCE}"
# SEAPATH's default shape: two hypervisors and one observer (a Ceph monitor and a cluster
# member that never runs VMs). Every node runs a Ceph monitor; each hypervisor one OSD.
HYPERVISORS = ("node1", "node2")
OBSERVER = "node3"
NODES = (*HYPERVISORS, OBSERVER)
IP = {"node1": f"{NET}.1", "node2": f"{NET}.2", "node3": f"{NET}.3", "admin": f"{NET}.254"}
NETNS_PREFIX = f"rbdvmlab{_SUFFIX}-"
SWITCH_NS = NETNS_PREFIX + "sw"     # holds the bridge, and the lab's admin address on it
BRIDGE = "br0"


def netns(part: str) -> str:
    """Network namespace of a node."""
    return NETNS_PREFIX + part


def node_interface(part: str) -> str:
    """Where a node's address is: a hypervisor's bridge (its guests' too), the observer's cable."""
    return BRIDGE if part in HYPERVISORS else "eth0"


# the lab's guests that are on the network (a Pacemaker guest node): addresses beside the nodes'
GUEST_IPS = tuple(f"{NET}.{i}" for i in range(101, 111))


def switch_port(part: str) -> str:
    """The bridge port (in the switch namespace) that plugs `part` in."""
    return "sw-" + part


# Every network namespace of the lab; the switch last because it holds the bridge.
ALL_NETNS = tuple(netns(p) for p in NODES) + (SWITCH_NS,)

MON_V2, MON_V1 = 3300, 6789
MONS = NODES                        # mon.<node> on every node, as SEAPATH deploys them
OSDS = {"node1": 0, "node2": 1}     # osd.<id> of each hypervisor, under CRUSH host <node>
MGR_NODE = OBSERVER                 # the one mgr (it serves no I/O; the observer rarely dies)


def mon_addr(n: str) -> str:
    return f"[v2:{IP[n]}:{MON_V2},v1:{IP[n]}:{MON_V1}]"


MON_ADDR = ",".join(mon_addr(n) for n in MONS)
CEPH_USER = "rbdvm"                 # least-privilege client used by rbdvm, tests and demo
FENCE_USER = "rbdvm-fence"          # fence_rbdvm's own client: it may remove blocklist entries
HISTORY_USER = "rbdvm-history"      # the alert agent's: adds to the event history (runs as hacluster)
MAINT_USER = "rbdvm-maintenance"    # node drain --maintenance: may set and clear noout on a host
POOL = "rbd"
SECRET_UUID = "5b1d7c0e-2a43-4f9e-9c1d-3e7a0b6c9d01"  # libvirt secret (ceph, client.rbdvm)
CLUSTER_NAME = "rbdvmlab"
FENCE_AGENT = "fence_rbdvmlab"
MIGRATION_PORTS = "49152-49215"      # libvirt's default migration_port_min/max
COROSYNC_PORT = 5405                 # knet's UDP port: what a cluster-network-only cut drops
OSD_BLOCK_BYTES = 8 << 30            # bluestore's block file: sparse, grows as data is written

CLEAN_ENV = ("env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG=C.UTF-8", "HOME=/root")


def node_dir(node: str) -> Path:
    return STATE / node


def ceph_dir(node: str) -> Path:
    """The node's Ceph daemons' state: their data, sockets, logs (it survives a crash)."""
    return node_dir(node) / "ceph"


# Private directories of a node: (folder under node_dir, mount point inside the node).
NODE_BINDS = (
    ("etc-corosync", "/etc/corosync"),
    ("var-lib-corosync", "/var/lib/corosync"),
    ("var-lib-pacemaker", "/var/lib/pacemaker"),
    ("log-corosync", "/var/log/corosync"),
    ("log-pacemaker", "/var/log/pacemaker"),
    ("etc-libvirt", "/etc/libvirt"),
    ("lib-libvirt", "/var/lib/libvirt"),
    ("log-libvirt", "/var/log/libvirt"),
    ("cache-libvirt", "/var/cache/libvirt"),
    ("etc-ceph", "/etc/ceph"),
    ("etc-rbdvm", "/etc/rbdvm"),                       # the node's device policy
    ("usr-local-bin", "/usr/local/bin"),
    ("hosts", "/etc/hosts"),
)
# Layers of a node over the host's own trees: (mount point, upper folder under node_dir, lab
# layer below it or None). Everything a node installs (`rbdvm install-agent`, the Debian
# package with dpkg's and apt's state) stays the node's; the node's binds go on top.
NODE_OVERLAYS = (
    ("/usr", "usr", LAB_USR),
    ("/var", "var", None),
)
# Volatile file systems of a node: lost on a "power cut" (crash / fence).
NODE_TMPFS = (("/run", "0755"), ("/dev/shm", "1777"))
