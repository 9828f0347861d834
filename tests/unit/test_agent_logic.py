"""Pure logic of the OCF agent: parameters, URIs, utilization, meta-data (no lab)."""

import subprocess

import pytest
from lxml import etree

from rbdvm.ocf import agent, migration, utilization
from rbdvm.ocf.codes import AgentError
from rbdvm.ocf.metadata import metadata_xml
from rbdvm.ocf.params import PARAMS, Params

pytestmark = [pytest.mark.unit, pytest.mark.requires("xmllint", "python:libvirt")]


def env(**kw):
    return {f"OCF_RESKEY_{k}": v for k, v in kw.items()}


def test_defaults_apply_when_pacemaker_passes_nothing():
    p = Params(env(vm="vm1"))
    assert (p.hypervisor, p.pool, p.ceph_id, p.force_stop, p.autoset_utilization_cpu) == \
        ("qemu:///system", "rbd", "rbdvm", False, True)


@pytest.mark.parametrize("bad,why", [
    ({}, "exactly one"), ({"vm": "a", "config": "/x.xml"}, "exactly one"),
    ({"vm": "bad-name"}, "not a VM name"), ({"vm": "vmé"}, "not a VM name"), ({"config": "rel.xml"}, "absolute"),
    ({"vm": "a", "force_stop": "maybe"}, "boolean"), ({"vm": "a", "migration_speed": "fast"}, "integer"),
    ({"vm": "a", "migration_downtime": "-1"}, "negative"), ({"vm": "a", "shutdown_mode": "kick"}, "one of"),
])
def test_bad_parameters_are_refused_with_a_reason(bad, why):
    with pytest.raises(AgentError, match=why):
        Params(env(**bad))


def test_uris_from_transport_user_suffix_or_templates():
    p = Params(env(vm="a", migration_transport="tcp", migration_user="root", migration_network_suffix="-mig"))
    assert migration.target_uris(p, "node2") == ("qemu+tcp://root@node2-mig/system", "")
    p = Params(env(vm="a", remoteuri="qemu+ssh://%n/system", migrateuri="tcp://%n:49152"))
    assert migration.target_uris(p, "node2") == ("qemu+ssh://node2/system", "tcp://node2:49152")
    assert migration.target_uris(Params(env(vm="a")), "n") == ("qemu://n/system", "")


def test_utilization_from_the_definition():
    xml = "<domain><vcpu placement='static'>4</vcpu><memory unit='GiB'>2</memory></domain>"
    assert utilization.values(xml) == {"cpu": 4, "hv_memory": 2048}
    assert utilization.values("<domain><memory>65536</memory></domain>") == {"hv_memory": 64}


def test_metadata_declares_every_parameter_and_validates():
    root = etree.fromstring(metadata_xml().encode())
    assert [p.get("name") for p in root.iter("parameter")] == [p.name for p in PARAMS]
    assert {a.get("name") for a in root.iter("action")} >= {"start", "stop", "monitor", "migrate_to",
                                                              "migrate_from", "meta-data", "validate-all"}
    res = subprocess.run(["xmllint", "--noout", "--relaxng", "/usr/share/resource-agents/metadata.rng", "-"],
                         input=metadata_xml(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_unknown_action_and_usage(capsys):
    assert agent.main(["frobnicate"]) == 3
    assert agent.main([]) == 2
    assert agent.main(["usage"]) == 0


def test_stop_and_monitor_take_bad_optional_values_with_a_note():
    env = {"OCF_RESKEY_vm": "vm1", "OCF_RESKEY_shutdown_mode": "hard", "OCF_RESKEY_stop_margin": "x"}
    with pytest.raises(AgentError):
        Params(env)
    p = Params(env, strict=False)
    assert (p.shutdown_mode, p.stop_margin) == ("", 5)
    assert len(p.ignored) == 2 and "shutdown_mode" in p.ignored[0]
    with pytest.raises(AgentError):
        Params({"OCF_RESKEY_vm": "bad-name"}, strict=False)   # identity is never guessed


def test_node_names_come_from_corosyncs_nodelist(tmp_path):
    from rbdvm.helpers.core import hostnames as nodes

    conf = tmp_path / "corosync.conf"
    conf.write_text("totem {\n version: 2\n}\nnodelist {\n    node {\n        name: alpha\n"
                    "        nodeid: 1\n        ring0_addr: 10.0.0.1\n        ring1_addr: 192.168.0.1\n    }\n"
                    "    node {\n        nodeid: 2\n        ring0_addr: beta.example\n    }\n}\n")
    assert nodes.cluster_addresses(str(conf)) == {"10.0.0.1": "alpha", "192.168.0.1": "alpha",
                                                  "beta.example": "beta.example"}
    assert nodes.cluster_addresses(str(tmp_path / "missing")) == {}
