"""The CIB fragments rbdvm writes, checked by Pacemaker's own schema: `crm_verify --xml-text`
on a CIB holding them (crm_verify reads the document it is given; no cluster runs here).
A corpus of VM names and map keys, the awkward ones included."""

import json
import subprocess

import pytest
from lxml import etree

from rbdvm.helpers.core import names, vmschema
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.core.vmschema import VmConfig
from rbdvm.helpers.pacemaker import cib

pytestmark = [pytest.mark.unit, pytest.mark.requires("crm_verify")]

NAMES = ["vm1", "a", "Z9", "rbdvm", "instance", "meta", "utilization", "x" * 60]
KEYS = ["attributes", "instance", "meta", "a.b", "a-b", "_x", "X9", "monitor"]


def metadata_for(keys):
    m = {k: "v" for k in keys}
    # agent parameters are the agent's own names (the odd keys go through the meta attributes)
    params = {"migration_transport": "tcp", "migration_network_suffix": "-mig", "force_stop": "true"}
    return {"_pacemaker_params": json.dumps(params), "_pacemaker_meta": json.dumps(m),
            "_pacemaker_utilization": json.dumps({k: 1 for k in keys}), "_live_migration": "true",
            "_priority": "5", "_preferred_host": "node1", "_migration_downtime": "300",
            "_colocations": json.dumps([{"with": n, "strong": i % 2 == 0, "anti": i % 3 == 0}
                                        for i, n in enumerate(NAMES)])}


def cib_document(vms: dict):
    root = etree.Element("cib", {"validate-with": "pacemaker-3.9", "epoch": "1", "num_updates": "0",
                                 "admin_epoch": "0"})
    conf = etree.SubElement(root, "configuration")
    props = etree.SubElement(etree.SubElement(conf, "crm_config"), "cluster_property_set", id="o")
    etree.SubElement(props, "nvpair", id="o-stonith", name="stonith-enabled", value="false")
    etree.SubElement(conf, "nodes")
    resources, constraints = etree.SubElement(conf, "resources"), etree.SubElement(conf, "constraints")
    target = CephTarget(namespace="ns1", conf="/etc/ceph/other.conf", client_id="other")
    for vm, md in vms.items():
        resources.append(cib.primitive(vm, target, VmConfig.of(md), start=False))
        constraints.extend(cib.constraints(vm, VmConfig.of(md), enabled=[v for v in vms if v != vm]))
    etree.SubElement(root, "status")
    return etree.tostring(root, encoding="unicode")


def test_everything_rbdvm_writes_for_a_corpus_of_names_and_keys_is_a_valid_cib():
    doc = cib_document({vm: metadata_for(KEYS) for vm in NAMES})
    res = subprocess.run(["crm_verify", "--xml-text", doc], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + res.stdout
    ids = etree.fromstring(doc.encode()).xpath("//@id")
    assert len(ids) == len(set(ids))


def test_crm_verify_catches_a_duplicate_id_so_the_test_above_means_something():
    doc = cib_document({"vm1": {}}).replace('id="rbdvm-vm1-avoid-rule"', 'id="vm1"')
    assert subprocess.run(["crm_verify", "--xml-text", doc], capture_output=True).returncode != 0


@pytest.mark.parametrize("key", ["a b", "1a", "a/b", "", "é", "a:b", "<x>"])
def test_map_keys_pacemaker_cannot_take_are_refused(key):
    for setting in ("pacemaker_params", "pacemaker_meta", "pacemaker_utilization"):
        with pytest.raises(UsageError):
            vmschema.check_map(setting, {key: "v"})


def test_a_name_starting_with_a_digit_is_refused_for_a_new_vm_and_for_the_cluster():
    with pytest.raises(UsageError) as exc:
        names.check_new_vm_name("1vm")
    assert "letter" in exc.value.message
    names.check_name("1vm")          # a vm_manager VM of that name is still managed
    with pytest.raises(UsageError):
        cib.primitive("1vm", CephTarget(), VmConfig(), start=False)
