"""Configuration files of the lab, rendered from layout.py (pure functions, unit-tested)."""

import xml.etree.ElementTree as ET

from . import layout as L

_CEPH_CLIENT_SETTINGS = {
    # Fail fast instead of Ceph's defaults (300 s mount timeout, ops that wait forever). In
    # the [client] section only: in [global] they also bound the mon commands an OSD makes
    # as it starts, and an OSD started during a monitor election gave up after 10 s.
    "client mount timeout": "10",
    "rados mon op timeout": "10",
}


def _ini(sections) -> str:
    out = []
    for name, values in sections:
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in values.items())
        out.append("")
    return "\n".join(out)


# seapath/ansible inventories/examples/seapath-cluster.yaml, ceph_conf_overrides
SEAPATH_CEPH = {
    "osd pool default size": str(len(L.HYPERVISORS)),
    "osd pool default min size": "1",
    "osd crush chooseleaf type": "1",
    "mon osd min down reporters": "1",
}


# How fast the monitors recover a quorum when one of them dies with its node (docs/fencing.md:
# Ceph-aware failover). With Ceph's defaults a dead leader is noticed when its lease runs
# out (5 s) and a dead peon when a proposal's accepts time out (2 x 5 s), then the election
# waits out its timeout (5 s) for the dead one: 10-15 s without a quorum, during which no
# fenced node's OSD can be marked down nor client blocklisted, and the failover waits.
MON_FAILOVER = {
    "mon lease": "2",
    "mon election timeout": "1",
}

# How fast a daemon or client whose monitor died with its node finds another (docs/fencing.md).
# With Ceph's defaults (a keepalive every 10 s, 30 s without an answer) the survivor's OSD,
# if its session was with the dead monitor, learnt of the dead OSD's mark 24 s after it was
# made, and its placement groups served no I/O meanwhile (seen on the lab's partition test).
MON_SESSION_FAILOVER = {
    "mon client ping interval": "1",
    "mon client ping timeout": "3",
}


def _ceph_global(fsid: str) -> dict:
    return {
        "fsid": fsid,
        "mon host": L.MON_ADDR,
        "mon initial members": ", ".join(L.MONS),
        "public network": f"{L.NET}.0/24",
        "ms bind ipv4": "true",
        "ms bind ipv6": "false",
        "auth cluster required": "cephx",
        "auth service required": "cephx",
        "auth client required": "cephx",
        "auth allow insecure global id reclaim": "false",
        **SEAPATH_CEPH,
        "osd pool default pg num": "8",
        "osd pool default pgp num": "8",
        "osd pool default pg autoscale mode": "off",
        "mon allow pool delete": "true",
        "mon data avail warn": "1",
        "mon data avail crit": "0",
        "mgr initial modules": "",
        **MON_SESSION_FAILOVER,
    }


def ceph_conf(fsid: str, node: str) -> str:
    """The conf of a node's Ceph daemons: their state under the node's own ceph directory
    (it survives a crash, like a disk), bound to the node's address."""
    d = L.ceph_dir(node)
    daemon_files = {  # only in daemon sections: clients would collide on them
        "admin socket": f"{d}/run/$cluster-$name.asok",
        "pid file": f"{d}/run/$cluster-$name.pid",
        "log file": f"{d}/log/$cluster-$name.log",
    }
    return _ini([
        ("global", {
            **_ceph_global(fsid),
            "public addr": L.IP[node],
            "cluster addr": L.IP[node],
            "run dir": f"{d}/run",
            "crash dir": f"{d}/crash",
            "mon cluster log file": f"{d}/log/$cluster.log",
        }),
        # 1 s by default: bring-up would take ~10 s of proposals
        ("mon", {**daemon_files, "paxos propose interval": "0.05",
                 "mon data": f"{d}/mon/$cluster-$id", **MON_FAILOVER}),
        ("mgr", {**daemon_files, "mgr data": f"{d}/mgr/$cluster-$id",
                 "keyring": f"{d}/mgr/$cluster-$id/keyring"}),
        # bluestore on a sparse file: data survives a crash as it does on a disk (memstore
        # forgets it); a small fixed cache keeps two OSDs within the lab's memory (docs/lab.md)
        ("osd", {**daemon_files, "osd data": f"{d}/osd/$cluster-$id",
                 "keyring": f"{d}/osd/$cluster-$id/keyring",
                 "osd objectstore": "bluestore",
                 "bluestore block create": "true",
                 "bluestore block size": str(L.OSD_BLOCK_BYTES),
                 "bluestore fsck on mkfs": "false",
                 "bluestore fsck on mount": "false",
                 "bluestore cache autotune": "false",
                 "bluestore cache size": str(64 << 20),
                 "osd memory target": "939524096"}),
        ("client", _CEPH_CLIENT_SETTINGS),
    ])


def admin_ceph_conf(fsid: str) -> str:
    """The lab's admin view (lab checks only): every monitor, the admin keyring."""
    return _ini([("global", {**_ceph_global(fsid), "keyring": f"{L.ADMIN_DIR}/keyring"}),
                 ("client", _CEPH_CLIENT_SETTINGS)])


def device_policy() -> str:
    """/etc/rbdvm/policy.toml of a node: the test guests write their serial port to files in
    the lab's shared directory (visible from every node and the host); the Linux guest's
    kernel and initramfs are in its cache (linuxguest.CACHE), beside the firmware."""
    from .linuxguest import CACHE

    # rbdvm's built-in firmware directories (the lab runs without rbdvm importable; a unit
    # test keeps this list a superset of devpolicy.Policy's), and the Linux guest's cache
    firmware = ["/usr/share/OVMF", "/usr/share/ovmf", "/usr/share/AAVMF", "/usr/share/edk2", "/usr/share/qemu",
                "/usr/share/seabios", "/usr/lib/ipxe", str(CACHE)]
    return ("# rbdvm device policy of a lab node (docs/security.md)\n"
            f"file_dirs = [{str(L.SHARED)!r}]\n"
            f"firmware_dirs = [{', '.join(repr(d) for d in firmware)}]\n").replace("'", '"')


def node_ceph_conf(fsid: str) -> str:
    """/etc/ceph/ceph.conf of a hypervisor: where the cluster is, nothing more."""
    return _ini([("global", {
        "fsid": fsid,
        "mon host": L.MON_ADDR,
        "auth cluster required": "cephx",
        "auth service required": "cephx",
        "auth client required": "cephx",
        **MON_SESSION_FAILOVER,
    }), ("client", _CEPH_CLIENT_SETTINGS)])


def client_keyring(key: str, user: str = L.CEPH_USER) -> str:
    return f"[client.{user}]\n\tkey = {key}\n"


def corosync_conf() -> str:
    """SEAPATH's template (roles/configure_ha/templates/corosync.conf.j2): every node one
    vote, votequorum without two_node, token 1000 ms. knet (encrypted) where SEAPATH has
    udpu: with token 1000 its pings come every 250 ms, so a link is up in ~0.5 s."""
    nodes = "".join(
        f"    node {{\n        name: {n}\n        nodeid: {i}\n        ring0_addr: {L.IP[n]}\n    }}\n"
        for i, n in enumerate(L.NODES, 1))
    return f"""totem {{
    version: 2
    cluster_name: {L.CLUSTER_NAME}
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    token: 1000
    interface {{
        linknumber: 0
    }}
}}
nodelist {{
{nodes}}}
quorum {{
    provider: corosync_votequorum
}}
logging {{
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: on
}}
"""


def _conf_value(v) -> str:
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[ " + ", ".join(f'"{x}"' for x in v) + " ]"
    return f'"{v}"'


def _libvirt_conf(values: dict) -> str:
    return "".join(f"{k} = {_conf_value(v)}\n" for k, v in values.items())


def libvirtd_conf(node: str) -> str:
    index = L.NODES.index(node) + 1
    return _libvirt_conf({
        "listen_tls": 0,
        "listen_tcp": 1,
        "listen_addr": L.IP[node],
        "auth_tcp": "none",
        "auth_unix_rw": "none",
        "unix_sock_group": "root",
        "unix_sock_rw_perms": "0770",
        # libvirt refuses to migrate between hosts with the same UUID
        "host_uuid": f"6c0a1e2b-5d3f-4e7a-9b1c-{index:012d}",
        "log_level": 3,
        "log_outputs": "3:file:/var/log/libvirt/libvirtd.log",
    })


def qemu_conf(node: str) -> str:
    # No systemd, virtlogd, cgroups or per-domain mount namespaces here; two libvirtd
    # instances on one kernel would collide on cgroup paths.
    return _libvirt_conf({
        "user": "root",
        "group": "root",
        "dynamic_ownership": 0,
        "remember_owner": 0,
        "security_driver": "none",
        "stdio_handler": "file",
        "namespaces": [],
        "cgroup_controllers": [],
        "migration_address": L.IP[node],
        "migration_host": L.IP[node],
        "vnc_listen": "127.0.0.1",
        "spice_listen": "127.0.0.1",
    })


def libvirt_secret_xml() -> str:
    secret = ET.Element("secret", ephemeral="no", private="yes")
    ET.SubElement(secret, "uuid").text = L.SECRET_UUID
    usage = ET.SubElement(secret, "usage", type="ceph")
    ET.SubElement(usage, "name").text = f"client.{L.CEPH_USER}"
    return ET.tostring(secret, encoding="unicode") + "\n"


def hosts() -> str:
    lines = ["127.0.0.1 localhost"] + [f"{L.IP[n]} {n}" for n in L.NODES]
    return "\n".join(lines) + "\n"


CLUSTER_PROPERTIES = {
    "stonith-enabled": "true",
    "dc-deadtime": "1s",              # default 20 s dominates start-up
    "cluster-recheck-interval": "1min",
    "stonith-timeout": "30s",
    # the three nodes share this machine's cores, and each reads the machine's load average as
    # its own: under the suite's side-by-side phase (load 4-8 on 2 cores) every controller
    # logged "High CPU load" and throttled itself to one action at a time, queuing each test's
    # starts and stops behind the others'. A real node measures only its own work
    "load-threshold": "1000%",
}
RESOURCE_DEFAULTS = {"resource-stickiness": "100"}


def _nvpairs(parent, prefix: str, values: dict) -> None:
    for k, v in values.items():
        ET.SubElement(parent, "nvpair", id=f"{prefix}-{k}", name=k, value=v)


def cib_seed(empty_cib: str) -> str:
    """The first CIB of every node: properties, defaults and one power-fence device per node,
    the observer's included. No fence delay: with three votes only a majority fences, so
    two nodes never shoot each other.

    `empty_cib` is what `cibadmin --empty` prints (so the schema version is Pacemaker's own).
    """
    cib = ET.fromstring(empty_cib)
    conf = cib.find("configuration")
    crm_config = conf.find("crm_config")
    props = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
    _nvpairs(props, "cib-bootstrap-options", CLUSTER_PROPERTIES)
    defaults = conf.find("rsc_defaults")
    if defaults is None:
        defaults = ET.SubElement(conf, "rsc_defaults")
    _nvpairs(ET.SubElement(defaults, "meta_attributes", id="rsc-options"), "rsc-options",
             RESOURCE_DEFAULTS)
    resources, constraints = conf.find("resources"), conf.find("constraints")
    for n in L.NODES:
        prim = ET.SubElement(resources, "primitive", id=f"fence-{n}", type=L.FENCE_AGENT)
        prim.set("class", "stonith")
        _nvpairs(ET.SubElement(prim, "instance_attributes", id=f"fence-{n}-ia"), f"fence-{n}", {
            "pcmk_host_list": n,
            "state_dir": str(L.STATE),
        })
        ops = ET.SubElement(prim, "operations")
        ET.SubElement(ops, "op", id=f"fence-{n}-monitor", name="monitor", interval="60s")
        # a node never runs the device that fences itself
        ET.SubElement(constraints, "rsc_location", id=f"ban-fence-{n}", rsc=f"fence-{n}",
                      node=n, score="-INFINITY")
    return ET.tostring(cib, encoding="unicode") + "\n"
