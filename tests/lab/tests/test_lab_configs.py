"""Pure logic of the lab: the files it renders (no root, no lab)."""

import configparser
import xml.etree.ElementTree as ET

import pytest

from labkit import configs
from labkit import layout as L

pytestmark = pytest.mark.unit

EMPTY_CIB = """<cib crm_feature_set="3.16.2" validate-with="pacemaker-3.9" epoch="0" num_updates="0"
 admin_epoch="0"><configuration><crm_config/><nodes/><resources/><constraints/></configuration>
 <status/></cib>"""


def _ini(text):
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.read_string(text)
    return parser


def test_ceph_conf_daemon_files_only_in_daemon_sections():
    conf = _ini(configs.ceph_conf("fsid-1", "node2"))
    assert conf["global"]["mon host"] == L.MON_ADDR
    assert all(L.IP[n] in L.MON_ADDR for n in L.NODES), "a monitor on every node"
    assert conf["global"]["public addr"] == L.IP["node2"]
    assert "admin socket" not in conf["global"], "clients would collide on the admin socket"
    for section in ("mon", "mgr", "osd"):
        assert conf[section]["admin socket"].startswith(str(L.ceph_dir("node2")))
    assert conf["mon"]["paxos propose interval"] == "0.05"
    assert conf["osd"]["osd objectstore"] == "bluestore", "data survives a crash"


def test_ceph_conf_has_seapaths_overrides():
    """seapath/ansible inventories/examples/seapath-cluster.yaml: size = hypervisors,
    min_size 1, replicas on distinct hosts, one down reporter."""
    for conf in (configs.ceph_conf("f", "node1"), configs.admin_ceph_conf("f")):
        g = _ini(conf)["global"]
        assert g["osd pool default size"] == "2" == str(len(L.HYPERVISORS))
        assert g["osd pool default min size"] == "1"
        assert g["osd crush chooseleaf type"] == "1"
        assert g["mon osd min down reporters"] == "1"


def test_node_ceph_conf_has_no_admin_and_fails_fast():
    conf = _ini(configs.node_ceph_conf("fsid-1"))
    assert conf.sections() == ["global", "client"]
    assert conf["global"]["fsid"] == "fsid-1"
    assert int(conf["client"]["client mount timeout"]) <= 10
    assert int(conf["global"]["mon client ping timeout"]) <= 3


def test_daemons_wait_for_the_monitors_and_leave_a_dead_one_in_seconds():
    """An OSD's start outlasts a monitor election (no client timeouts in its sections), and
    every daemon drops a dead monitor's session within seconds."""
    conf = _ini(configs.ceph_conf("fsid-1", "node1"))
    for section in ("global", "osd", "mon"):
        assert "rados mon op timeout" not in conf[section]
    assert int(conf["client"]["rados mon op timeout"]) <= 10
    assert int(conf["global"]["mon client ping timeout"]) <= 3
    assert "keyring" not in conf["global"]
    assert configs.client_keyring("KEY") == f"[client.{L.CEPH_USER}]\n\tkey = KEY\n"


def test_corosync_conf_is_seapaths_three_votes_token_1000():
    text = configs.corosync_conf()
    for i, n in enumerate(L.NODES, 1):
        assert f"name: {n}\n        nodeid: {i}\n        ring0_addr: {L.IP[n]}" in text
    assert len(L.NODES) == 3 and "two_node" not in text, "three votes, no two_node"
    assert "token: 1000" in text
    assert text.count("{") == text.count("}")


def test_libvirt_hosts_have_distinct_uuids_and_own_addresses():
    confs = {n: configs.libvirtd_conf(n) for n in L.HYPERVISORS}
    uuids = {line for c in confs.values() for line in c.splitlines() if line.startswith("host_uuid")}
    assert len(uuids) == len(L.HYPERVISORS)
    for n, c in confs.items():
        assert f'listen_addr = "{L.IP[n]}"' in c
        assert f'migration_address = "{L.IP[n]}"' in configs.qemu_conf(n)
    assert "cgroup_controllers = [  ]" in configs.qemu_conf("node1")


def test_libvirt_secret_is_ceph_usage_of_the_rbdvm_client():
    secret = ET.fromstring(configs.libvirt_secret_xml())
    assert secret.findtext("uuid") == L.SECRET_UUID
    assert secret.find("usage").get("type") == "ceph"
    assert secret.findtext("usage/name") == f"client.{L.CEPH_USER}"


def test_hosts_resolve_every_part():
    lines = configs.hosts().splitlines()
    for part in L.NODES:
        assert f"{L.IP[part]} {part}" in lines


def test_cib_seed_fencing_and_properties():
    cib = ET.fromstring(configs.cib_seed(EMPTY_CIB))
    props = {nv.get("name"): nv.get("value") for nv in cib.iter("nvpair")
             if nv.get("id").startswith("cib-bootstrap-options")}
    assert props["stonith-enabled"] == "true"
    fences = {p.get("id"): p for p in cib.iter("primitive")}
    assert set(fences) == {f"fence-{n}" for n in L.NODES}
    for n in L.NODES:
        attrs = {nv.get("name"): nv.get("value") for nv in fences[f"fence-{n}"].iter("nvpair")}
        assert attrs["pcmk_host_list"] == n
        assert attrs["state_dir"] == str(L.STATE)
        ban = cib.find(f".//rsc_location[@id='ban-fence-{n}']")
        assert (ban.get("rsc"), ban.get("node"), ban.get("score")) == (f"fence-{n}", n, "-INFINITY")
        assert "pcmk_delay_base" not in attrs, "three votes: only a majority fences, no race to delay"
    ids = [e.get("id") for e in cib.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "CIB ids must be unique"
