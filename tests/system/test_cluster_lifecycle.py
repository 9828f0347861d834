"""A VM's life in the cluster from the CLI (issue 5), on the lab's two-node Pacemaker
cluster: create (enabled), status/list, snapshot, migrate, stop/start, rollback while
enabled, disable, remove; a VM that cannot start; pinning, preference and anti-colocation
across standby. `list` is checked against crm_mon's own view at every step."""

import json
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest

from labkit import node as labnode
from labkit import ops
from labkit.procs import wait_for
from labkit.testing import (
    PYTHON,
    RBDTOOL,
    base_xml,
    boot_disk,
    files_dir,
    force_remove_all,
    make_vm,
    qemu_pids,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    unique,
    write_bytes,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = "node1", "node2"
TCP = ("--pacemaker-params", "migration_transport=tcp")


def other(n):
    return N2 if n == N1 else N1


def crm_view(vm):
    """(role, node) of the VM's resource in crm_mon's XML, or None without a resource."""
    x = ET.fromstring(ops.on(N1, "crm_mon", "-1", "--output-as=xml", "--inactive").stdout)
    for r in x.iter("resource"):
        if r.get("id") == vm:
            n = r.find("node")
            return r.get("role"), None if n is None else n.get("name")
    return None


def listed(vm):
    return {v["name"]: v for v in rbdvm_json("list")}[vm]


def agrees(vm, status, node=None):
    """rbdvm list, rbdvm status and crm_mon say the same thing about the VM."""
    row, st, crm = listed(vm), rbdvm_json("status", vm), crm_view(vm)
    assert (row["status"], row["node"]) == (st["status"], st["node"]) == (status, node), (row, st, crm)
    expected_crm = None if status == "Disabled" else (status if status != "Failed" else crm[0], node)
    assert crm == expected_crm, (row, crm)


def settle():
    ops.on(N1, "crm_resource", "--wait", "--timeout", "120s", timeout=150)


def standby(node, on):
    if on:
        ops.on(N1, "crm_attribute", "--node", node, "--name", "standby", "--update", "on", "--lifetime", "forever")
    else:
        ops.on(N1, "crm_attribute", "--node", node, "--name", "standby", "--delete", "--lifetime", "forever")
    settle()


@pytest.fixture
def vms(request):
    """Names for the test's VMs; each is removed afterwards (disabled first) wherever it is."""
    made = []

    def new():
        made.append(unique())
        return made[-1]

    def cleanup():
        ops.on(N1, "crm_attribute", "--node", N1, "--name", "standby", "--delete", "--lifetime", "forever", check=False)
        ops.on(N1, "crm_attribute", "--node", N2, "--name", "standby", "--delete", "--lifetime", "forever", check=False)
        force_remove_all(made)
    request.addfinalizer(cleanup)
    return new


@pytest.mark.side_by_side
def test_whole_life_from_the_cli(vms):
    vm = vms()
    out = rbdvm_json("create", vm, "--image", boot_disk(), "--xml", base_xml(vm), "--live-migration", *TCP)
    assert out["cluster"]["status"] == "Started", "create enables and starts the VM by default"
    x = out["cluster"]["node"]
    ops.wait_serial(vm, "READY")
    assert qemu_pids(x, vm) and not qemu_pids(other(x), vm)
    agrees(vm, "Started", x)
    assert rbdvm_json("enable", vm)["changed"] is False, "enabling an enabled VM changes nothing"

    rbdvm("snapshot", "create", vm, "clean")
    write_bytes(f"system_{vm}", 4096, 0x5A, 512)        # changed after the snapshot
    assert read_bytes(f"system_{vm}", 4096, 512) == b"\x5a" * 512

    y = other(x)
    out = rbdvm_json("migrate", vm, y)
    assert (out["status"], out["node"]) == ("Started", y)
    assert ops.boots(vm) == 1, "a live migration, no reboot"
    agrees(vm, "Started", y)
    assert "not a cluster node" in rbdvm_error(2, "migrate", vm, "node9")

    assert rbdvm_json("stop", vm)["status"] == "Stopped"
    assert not qemu_pids(y, vm) and not qemu_pids(x, vm)
    agrees(vm, "Stopped")
    out = rbdvm_json("start", vm)
    assert out["status"] == "Started"
    # let the guest boot before the rollback's graceful stop (an ACPI press during boot is lost)
    assert wait_for(30, lambda: ops.boots(vm) == 2)
    agrees(vm, "Started", out["node"])

    out = rbdvm_json("snapshot", "rollback", vm, "clean")
    assert out["cluster"]["status"] == "Started", "enabled and running again after the rollback"
    assert read_bytes(f"system_{vm}", 4096, 512) == b"\0" * 512, "the disk is back to the snapshot"
    assert wait_for(30, lambda: ops.boots(vm) == 3)
    agrees(vm, "Started", out["cluster"]["node"])

    assert "Snapshot does not exist" in rbdvm_error(3, "snapshot", "rollback", vm, "nosuch")
    assert ops.boots(vm) == 3, "a wrong snapshot name does not restart the VM"

    # a rollback that fails once the VM is disabled (its lease is held elsewhere): the VM is
    # enabled again, and both outcomes are reported
    ready = files_dir() / f"{vm}.lease"
    holder = subprocess.Popen(labnode.enter(N2) + [PYTHON, RBDTOOL, "hold-lease", "-", vm, "3", str(ready)])
    try:
        assert wait_for(20, ready.exists)
        msg = rbdvm_error(1, "snapshot", "rollback", vm, "clean")
        assert f"rollback of VM {vm} to clean failed" in msg and "is busy" in msg
        assert "The VM is enabled again, unchanged (Started on node" in msg
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's lease expires (3 s) before the remove below needs it
    assert wait_for(30, lambda: rbdvm("metadata", "set", vm, "lease", "free", check=False).returncode == 0)
    agrees(vm, "Started", rbdvm_json("status", vm)["node"])
    ops.wait_boots(vm, 4)

    # a rollback killed while the VM is disabled: running it again enables the VM again
    res = rbdvm("snapshot", "rollback", vm, "clean", env={"RBDVM_FAULT_AT": "rollback:disabled"}, check=False)
    assert res.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), res.stderr
    agrees(vm, "Disabled")
    out = rbdvm_json("snapshot", "rollback", vm, "clean")
    assert out["cluster"]["status"] == "Started"
    assert "_reenable" not in rbdvm_json("metadata", "list", vm, "--all")
    ops.wait_boots(vm, 5)

    assert "rbdvm disable" in rbdvm_error(4, "remove", vm), "an enabled VM is not removed without --force"
    assert rbdvm_json("disable", vm)["changed"] is True
    agrees(vm, "Disabled")
    assert f"rbdvm-{vm}" not in ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    assert rbdvm_json("disable", vm)["changed"] is False
    assert "VM is not on the cluster" in rbdvm_error(3, "start", vm)
    rbdvm("remove", vm)
    assert rbdvm_json("status", vm)["status"] == "Undefined"


@pytest.mark.side_by_side
def test_a_live_migration_that_fails_is_not_reported_as_live(vms):
    """Seen while building the Debian package test: with a migration transport that cannot
    reach the other node (the default, TLS, which the lab's libvirtd does not listen on),
    migrate_to fails and Pacemaker recovers the VM
    by a stop and a start on the target: the guest reboots. `rbdvm migrate` said it moved
    live. It must say the guest was restarted, and why."""
    vm = vms()
    rbdvm("create", vm, "--image", boot_disk(), "--xml", base_xml(vm), "--live-migration")   # default transport
    x = rbdvm_json("status", vm)["node"]
    ops.wait_serial(vm, "READY")
    y = other(x)
    out = json.loads(rbdvm("migrate", vm, y, "--json").stdout)
    assert (out["status"], out["node"]) == ("Started", y), out
    assert wait_for(30, lambda: ops.boots(vm) == 2), "moved by a restart"
    assert out["how"] == "restarted", out
    assert "live migration failed" in out["warning"] and "rebooted" in out["warning"], out
    ops.wait_serial(vm, "READY")     # a guest stops on ACPI only once booted


@pytest.mark.side_by_side
def test_clone_starts_by_default_and_remove_force_disables_first(vms):
    vm, copy = vms(), vms()
    rbdvm("create", vm, "--image", boot_disk(), "--xml", base_xml(vm))
    ops.wait_serial(vm, "READY")
    out = rbdvm_json("clone", vm, copy, "--xml", base_xml(copy))
    assert out["cluster"]["status"] == "Started"
    ops.wait_serial(copy, "READY")
    agrees(copy, "Started", out["cluster"]["node"])
    for name in (copy, vm):
        out = rbdvm_json("remove", name, "--force")
        assert out["removed_disks"] == [f"system_{name}"]
        assert crm_view(name) is None and rbdvm_json("status", name)["status"] == "Undefined"


@pytest.mark.side_by_side
def test_vm_that_cannot_start_is_failed_with_the_reason_and_disable_cleans_up(vms):
    from lxml import etree

    vm = vms()
    dom = etree.parse(base_xml(vm)).getroot()
    dom.find("os/type").set("machine", "nosuchmachine")    # the device policy allows it; QEMU cannot
    bad = files_dir() / f"{vm}.broken.xml"
    bad.write_bytes(etree.tostring(dom))
    msg = rbdvm_error(1, "create", vm, "--image", boot_disk(), "--xml", str(bad))
    # libvirt 9.0 says "XML error: No PCI buses available" for a machine QEMU does not have
    assert f"VM {vm} was created but not started" in msg and "XML error" in msg, msg
    st = rbdvm_json("status", vm)
    assert st["status"] == "Failed" and "XML error" in st["reason"], st
    assert listed(vm)["status"] == "Failed"
    assert rbdvm_json("disable", vm)["changed"] is True
    agrees(vm, "Disabled")
    assert vm not in ops.on(N1, "crm_mon", "-1", "--output-as=xml", "--inactive", "--include=all").stdout
    rbdvm("remove", vm)


def test_pinned_never_moves_preferred_comes_back(vms):
    pinned, preferred = vms(), vms()
    make_vm(pinned)
    make_vm(preferred)
    out = rbdvm_json("pin", pinned, N2)
    assert out["status"] == "Disabled" and out["changed"] is True, "stored; applied when enabled"
    assert rbdvm_json("enable", pinned)["node"] == N2
    first = rbdvm_json("enable", preferred)["node"]
    out = rbdvm_json("prefer", preferred, N1)
    assert (out["status"], out["node"], out["settled"]) == ("Started", N1, True)
    assert rbdvm_json("prefer", preferred, N1)["changed"] is False
    boots = 1 if first == N1 else 2     # moved to node1: stopped and started there
    ops.wait_boots(pinned, 1)
    ops.wait_boots(preferred, boots)

    standby(N2, True)
    agrees(pinned, "Stopped")           # it stops rather than run on node1
    assert listed(pinned)["reason"].startswith("no node may run it now")
    assert not qemu_pids(N1, pinned) and not qemu_pids(N2, pinned)
    rbdvm("stop", pinned)
    msg = rbdvm_error(1, "start", pinned)   # at once, not after the start timeout
    assert "no node may run it now" in msg and f"rbdvm info {pinned}" in msg
    standby(N1, True)
    standby(N2, False)
    agrees(pinned, "Started", N2)
    agrees(preferred, "Started", N2)    # away from home while node1 is in standby
    ops.wait_boots(preferred, boots + 1)
    standby(N1, False)
    agrees(preferred, "Started", N1)    # and back home afterwards
    agrees(pinned, "Started", N2)
    ops.wait_boots(pinned, 2)

    # an ordered, weighted list, changed live by `set`: one rule per node, the VM on the
    # highest that is up; `prefer` with a plain order replaces it whole
    out = rbdvm_json("set", preferred, "--preferred-host", f"{N2}:5,{N1}:1")
    assert (out["status"], out["node"]) == ("Started", N2)
    constraints = ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    assert 'score="5000"' in constraints and 'score="1000"' in constraints
    out = rbdvm_json("prefer", preferred, f"{N1},{N2}")
    assert (out["status"], out["node"]) == ("Started", N1)
    assert rbdvm_json("info", preferred)["settings"]["preferred_host"] == f"{N1},{N2}"

    # disable + enable restores the placement, from the metadata
    rbdvm("disable", pinned)
    assert rbdvm_json("enable", pinned)["node"] == N2
    out = rbdvm_json("unpin", pinned)
    assert out["changed"] is True
    assert f"rbdvm-{pinned}-placement" not in ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    assert "not a cluster node" in rbdvm_error(2, "pin", pinned, "node9")


def test_anti_colocated_vms_never_share_a_node(vms):
    a, b = vms(), vms()
    make_vm(a)
    make_vm(b)
    rbdvm("pin", a, N1)
    rbdvm("enable", a)
    out = rbdvm_json("colocate", b, a, "--anti", "--strong")
    assert out["colocations"] == [{"anti": True, "strong": True, "with": a}]
    assert rbdvm_json("info", b)["colocations"] == out["colocations"]
    assert rbdvm_json("enable", b)["node"] == N2
    ops.wait_serial(a, "READY")
    ops.wait_serial(b, "READY")

    rbdvm("unpin", a)
    standby(N1, True)                   # a moves to node2: b must make room, it stops
    agrees(a, "Started", N2)
    agrees(b, "Stopped")
    standby(N1, False)
    agrees(b, "Started", N1)
    ops.wait_boots(a, 2)
    ops.wait_boots(b, 2)

    # disabling a drops the constraint (it may not name a missing resource); enabling a restores it
    rbdvm("disable", a)
    assert f"rbdvm-{b}-colo-{a}" not in ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    rbdvm("enable", a)
    assert f"rbdvm-{b}-colo-{a}" in ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    settle()
    assert listed(a)["node"] != listed(b)["node"]
    out = rbdvm_json("colocate", b, a, "--remove")
    assert out["colocations"] == [] and out["changed"] is True
    assert f"rbdvm-{b}-colo-{a}" not in ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
    assert "cannot be colocated with itself" in rbdvm_error(2, "colocate", a, a)
    assert "VM does not exist" in rbdvm_error(3, "colocate", a, unique("ghost"))


# ------------------------------------------------------------------ issue 9: R4, S4
@pytest.mark.parametrize("option,pair", [
    ("--pacemaker-params", "vm=other"), ("--pacemaker-params", "config=/etc/other.xml"),
    ("--pacemaker-params", "pool=elsewhere"), ("--pacemaker-params", "namespace=ns"),
    ("--pacemaker-params", "ceph_conf=/tmp/c.conf"), ("--pacemaker-params", "ceph_id=admin"),
    ("--pacemaker-params", "hypervisor=qemu+tcp://node2/system"),
    ("--pacemaker-meta", "target-role=Started"), ("--pacemaker-meta", "allow-migrate=true"),
])
@pytest.mark.side_by_side
def test_stored_pacemaker_settings_cannot_retarget_the_resource(vms, option, pair):
    vm = vms()
    err = rbdvm_error(2, "create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), option, pair)
    assert pair.split("=")[0] in err
    assert vm not in {v["name"] for v in rbdvm_json("list")}, "nothing was created"


@pytest.mark.side_by_side
def test_enable_refuses_foreign_pacemaker_metadata_and_renders_booleans(vms):
    """Settings written by another tool straight into the image metadata: enable refuses
    them (not signed), trust checks them as create does before signing, and enable renders
    JSON booleans the way Pacemaker reads them."""
    vm = vms()
    make_vm(vm)
    system = f"rbd/system_{vm}"
    for key, value in (("_pacemaker_params", '{"vm": "other"}'),
                       ("_pacemaker_params", '{"migration_speed": {"nested": 1}}'),
                       ("_pacemaker_meta", '{"target-role": "Started"}'),
                       ("_pacemaker_utilization", '["not", "a", "map"]')):
        ops.rbd(N1, "image-meta", "set", system, key, value)
        assert "not signed by this cluster" in rbdvm_error(6, "enable", vm)
        err = rbdvm_error(6, "trust", vm, "--yes")
        assert key in err, err
        assert crm_view(vm) is None, "no resource was made"
        ops.rbd(N1, "image-meta", "remove", system, key)
    ops.rbd(N1, "image-meta", "set", system, "_pacemaker_params",
            '{"migration_auto_converge": true, "migration_speed": 50}')
    ops.rbd(N1, "image-meta", "set", system, "_pinned_host", N1)
    rbdvm("trust", vm, "--yes")
    rbdvm("enable", vm)
    xml = ops.on(N1, "cibadmin", "--query", "--xpath", f"//primitive[@id='{vm}']").stdout
    nv = {e.get("name"): e.get("value") for e in ET.fromstring(xml).iter("nvpair")}
    assert nv["migration_auto_converge"] == "true" and nv["migration_speed"] == "50", nv


@pytest.mark.side_by_side
def test_utilization_is_set_again_when_the_resource_is_made_again(vms):
    """disable deletes the resource, enable makes it anew on the same node: the agent must
    not trust what it remembered writing to the old one."""
    vm = vms()
    make_vm(vm, pinned_host=N1)

    def cpu():
        return ops.on(N1, "crm_resource", "-r", vm, "--utilization", "-g", "cpu", check=False).stdout.strip()

    rbdvm("enable", vm)
    assert wait_for(30, lambda: cpu() == "1")
    rbdvm("disable", vm)
    rbdvm("enable", vm)
    assert rbdvm_json("status", vm)["node"] == N1
    assert wait_for(30, lambda: cpu() == "1"), "utilization of the new resource"


@pytest.mark.side_by_side
def test_disable_never_deletes_the_operators_constraints(vms):
    """The operator ordered the VM after their own resource (`pcs constraint order nfs then
    vm`). disable used to delete every constraint naming the VM, theirs included. Pacemaker
    cannot delete a resource a constraint still names, so disable (and rollback, through
    it) refuses before stopping anything, naming the constraint; rbdvm's own constraints
    and the ones `crm_resource --move` leaves go with the resource."""
    vm, nfs = vms(), unique("nfs")
    make_vm(vm)
    rbdvm("enable", "--no-start", vm)
    ops.on(N1, "cibadmin", "--create", "--scope", "resources", "--xml-text",
           f'<primitive id="{nfs}" class="ocf" provider="pacemaker" type="Dummy"><meta_attributes '
           f'id="{nfs}-m"><nvpair id="{nfs}-m-t" name="target-role" value="Stopped"/></meta_attributes></primitive>')
    try:
        ops.on(N1, "cibadmin", "--create", "--scope", "constraints", "--xml-text",
               f'<rsc_order id="{nfs}-then-vm" first="{nfs}" then="{vm}"/>')
        ops.on(N1, "crm_resource", "--move", "--resource", vm, "--node", N2)
        rbdvm("snapshot", "create", vm, "s1")
        for args in (["disable", vm], ["snapshot", "rollback", vm, "s1"]):
            msg = rbdvm_error(4, *args)
            assert f"{nfs}-then-vm" in msg, msg
        cons = ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
        assert f'id="{nfs}-then-vm"' in cons, "the operator's constraint is still there"
        assert crm_view(vm) is not None, "the VM is still enabled"
        ops.on(N1, "cibadmin", "--delete", "--xml-text", f'<rsc_order id="{nfs}-then-vm"/>')
        rbdvm("disable", vm)
        cons = ops.on(N1, "cibadmin", "--query", "--scope", "constraints").stdout
        assert vm not in cons, "rbdvm's constraints and the move's went with the resource"
    finally:
        ops.on(N1, "cibadmin", "--delete", "--xml-text", f'<rsc_order id="{nfs}-then-vm"/>', check=False)
        ops.on(N1, "cibadmin", "--delete", "--xml-text", f'<primitive id="{nfs}"/>', check=False)
