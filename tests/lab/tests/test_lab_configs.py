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
    conf = _ini(configs.ceph_conf("fsid-1"))
    assert conf["global"]["mon host"] == L.MON_ADDR
    assert L.IP["ceph"] in L.MON_ADDR
    for section in ("global", "client"):
        assert "admin socket" not in conf[section], "clients would collide on the admin socket"
    for section in ("mon", "mgr", "osd"):
        assert conf[section]["admin socket"].startswith(str(L.CEPH_DIR))
    assert conf["mon"]["paxos propose interval"] == "0.05"
    assert conf["osd"]["osd objectstore"] == "memstore"


def test_node_ceph_conf_has_no_admin_and_fails_fast():
    conf = _ini(configs.node_ceph_conf("fsid-1"))
    assert conf.sections() == ["global"]
    assert conf["global"]["fsid"] == "fsid-1"
    assert int(conf["global"]["client mount timeout"]) <= 10
    assert "keyring" not in conf["global"]
    assert configs.client_keyring("KEY") == f"[client.{L.CEPH_USER}]\n\tkey = KEY\n"


def test_corosync_conf_lists_both_nodes_two_node_quorum():
    text = configs.corosync_conf()
    for i, n in enumerate(L.NODES, 1):
        assert f"name: {n}\n        nodeid: {i}\n        ring0_addr: {L.IP[n]}" in text
    assert "two_node: 1" in text
    assert text.count("{") == text.count("}")


def test_libvirt_hosts_have_distinct_uuids_and_own_addresses():
    confs = {n: configs.libvirtd_conf(n) for n in L.NODES}
    uuids = {line for c in confs.values() for line in c.splitlines() if line.startswith("host_uuid")}
    assert len(uuids) == len(L.NODES)
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
    for part in (*L.NODES, "ceph"):
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
    delays = sorted(L.FENCE_DELAY.values())
    assert delays[0] != delays[-1], "equal delays let both nodes shoot each other"
    ids = [e.get("id") for e in cib.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "CIB ids must be unique"
