"""Defects issue 20 names, each shown by a test written before its fix (unit level: the
injected environment is scripted, and says so)."""

import socket
import threading

import pytest

from rbdvm.helpers.core import hostnames
from rbdvm.helpers.ops import running
from rbdvm.helpers.ops.env import Env
from rbdvm.helpers.pacemaker.cluster import Cluster
from rbdvm.ocf import migration
from rbdvm.ocf.params import Params

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]

CRM_MON = """<pacemaker-result><nodes><node name="node1"/><node name="node2"/></nodes>
<resources><resource id="vm1" resource_agent="ocf:rbdvm:VirtualDomain" role="Started" active="true"
 failed="false"><node name="node2"/></resource></resources></pacemaker-result>"""
RESOURCES = """<resources><primitive id="vm1" class="ocf" provider="rbdvm" type="VirtualDomain">
<instance_attributes id="vm1-instance_attributes">
<nvpair id="a1" name="vm" value="vm1"/>
<nvpair id="a2" name="remoteuri" value="qemu+ssh://admin@%n:2222/system"/>
<nvpair id="a3" name="migration_network_suffix" value="-mig"/>
</instance_attributes></primitive></resources>"""


def scripted_pacemaker(here):
    """crm_mon and cibadmin as a cluster running vm1 on node2 would answer on node `here` (scripted)."""
    return lambda argv, timeout=30: {"crm_mon": CRM_MON, "cibadmin": RESOURCES, "crm_node": here + "\n"}[argv[0]]


def test_a_hot_plug_reaches_the_node_by_the_uri_its_migration_uses():
    env = Env(cluster=Cluster(run=scripted_pacemaker("node1"), available=True))
    node, uri = running.running_on(env, "vm1")
    p = Params({"OCF_RESKEY_vm": "vm1", "OCF_RESKEY_remoteuri": "qemu+ssh://admin@%n:2222/system",
                "OCF_RESKEY_migration_network_suffix": "-mig"})
    assert (node, uri) == ("node2", migration.target_uris(p, "node2")[0])


def test_on_the_node_that_runs_the_vm_its_libvirtd_is_reached_through_the_local_socket():
    """Whatever the migration settings: no network, no TLS certificate, no ssh key needed."""
    env = Env(cluster=Cluster(run=scripted_pacemaker("node2"), available=True))
    assert running.running_on(env, "vm1") == ("node2", "qemu:///system")


def test_naming_a_disk_client_never_waits_on_a_dead_dns_server(monkeypatch):
    """A resolver that never answers (a partition, a dead server): the lookup gives up."""
    release = threading.Event()

    def hung_resolver(addr):
        release.wait()
        raise socket.herror("released")

    monkeypatch.setattr(socket, "gethostbyaddr", hung_resolver)
    box = []
    t = threading.Thread(target=lambda: box.append(hostnames.name_of("192.0.2.7")), daemon=True)
    t.start()
    t.join(20)        # not a speed target: the old code waits for ever here
    release.set()
    assert box == [None], "the lookup waited on a resolver that does not answer"


def test_only_the_owner_resolves_addresses():
    """Every address -> name goes through core/hostnames (bounded): vmstore's own unbounded
    gethostbyaddr was how the CLI's messages could hang."""
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    users = [str(p.relative_to(repo)) for folder in ("helpers", "ocf", "cli") for p in (repo / folder).rglob("*.py")
             if "gethostbyaddr" in p.read_text()]
    assert users == ["helpers/core/hostnames.py"]
