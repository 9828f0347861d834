"""Cluster life cycle from the CLI (issue 5, first part): enable, status/list, migrate, stop,
start, disable, through Pacemaker's own tools, on the lab's two-node cluster."""

import pytest
from lab_helpers import force_remove, make_vm, qemu_pids, rbdvm, rbdvm_error, rbdvm_json, unique
from labkit import ops
from labkit.procs import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]


def crm_where(vm):
    return ops.resource_node("node1", vm)


def test_enable_status_migrate_stop_start_disable(request):
    vm = unique()
    make_vm(vm, live_migration=True, pacemaker_params="migration_transport=tcp")
    request.addfinalizer(lambda: (rbdvm("disable", vm, check=False), force_remove(vm)))
    assert rbdvm_json("status", vm)["status"] == "Disabled"
    assert "VM is not on the cluster" in rbdvm_error(3, "start", vm)

    out = rbdvm_json("enable", vm)
    assert out["status"] == "Started" and out["changed"] is True
    x = out["node"]
    ops.wait_serial(vm, "READY")
    assert crm_where(vm) == x and qemu_pids(x, vm)
    assert rbdvm_json("enable", vm)["changed"] is False, "enabling an enabled VM changes nothing"
    listed = {v["name"]: v for v in rbdvm_json("list")}
    assert (listed[vm]["status"], listed[vm]["node"]) == ("Started", x)

    y = "node2" if x == "node1" else "node1"
    out = rbdvm_json("migrate", vm, y)
    assert (out["status"], out["node"]) == ("Started", y) and crm_where(vm) == y
    assert ops.serial_text(vm).count("READY") == 1, "a live migration, no reboot"
    assert "not a cluster node" in rbdvm_error(2, "migrate", vm, "node9")

    assert rbdvm_json("stop", vm)["status"] == "Stopped"
    assert not qemu_pids(y, vm) and crm_where(vm) is None
    assert rbdvm_json("start", vm)["status"] == "Started"
    # let the guest boot before disable's graceful stop (an ACPI press during boot is lost)
    assert wait_for(30, lambda: ops.serial_text(vm).count("READY") == 2)

    assert rbdvm_json("disable", vm)["changed"] is True
    assert rbdvm_json("status", vm)["status"] == "Disabled"
    assert f"rbdvm-{vm}" not in ops.on("node1", "cibadmin", "--query", "--scope", "constraints").stdout
    assert rbdvm_json("disable", vm)["changed"] is False
    assert rbdvm_json("status", unique("ghost"))["status"] == "Undefined"
