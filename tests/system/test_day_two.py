"""Day two (issue 13) on the lab's cluster: settings changed on a running VM, disks added and
grown under a running guest, a cold move, a node drained and resumed."""

import json

import pytest

from labkit import layout as L
from labkit import ops
from labkit.procs import run, wait_for
from labkit.testing import (
    base_xml,
    boot_disk,
    force_remove,
    force_remove_all,
    killed_at,
    make_vm,
    other,
    qemu_pids,
    rbdvm,
    rbdvm_error,
    rbdvm_error_json,
    rerun,
    unique,
    where,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS


def cib_primitive(vm: str):
    from lxml import etree

    out = ops.on(N1, "cibadmin", "--query", "--xpath", f"//primitive[@id='{vm}']").stdout
    return etree.fromstring(out.encode())


def pairs(prim, tag: str) -> dict:
    return {nv.get("name"): nv.get("value") for nv in prim.findall(f"{tag}/nvpair")}


def set_json(vm, *args, check=True):
    res = rbdvm("set", vm, *args, "--json", check=check)
    return json.loads(res.stdout) if res.returncode == 0 else res


@pytest.mark.side_by_side
def test_settings_change_on_a_running_vm_without_a_restart(cluster_vm):
    vm = cluster_vm
    x = where(vm)
    before = pairs(cib_primitive(vm), "utilization")
    assert before.get("cpu") == "1", "the agent measured the definition"
    r = set_json(vm, "--priority", "7", "--stop-timeout", "45", "--pacemaker-utilization", "tier=2")
    assert r["changed"] == ["_pacemaker_utilization", "_priority", "_stop_timeout"] and not r["restarted"], r
    prim = cib_primitive(vm)
    assert pairs(prim, "meta_attributes")["priority"] == "7"
    assert prim.find("operations/op[@name='stop']").get("timeout") == "45s"
    assert pairs(prim, "utilization") == {**before, "tier": "2"}, "the agent's cpu is kept"
    assert where(vm) == x and ops.boots(vm) == 1, "no restart"

    again = set_json(vm, "--priority", "7")
    assert again["changed"] == [] and ops.boots(vm) == 1, "setting the same value changes nothing"
    removed = set_json(vm, "--pacemaker-utilization", "tier=")
    assert "tier" not in pairs(cib_primitive(vm), "utilization")
    assert removed["changed"] == ["_pacemaker_utilization"]

    uuid_before = json.loads(rbdvm("info", vm, "--json").stdout)["uuid"]
    bus = set_json(vm, "--disk-bus", "sata")
    assert bus["definition"] == "applies at the next start" and not bus["restarted"]
    stored = rbdvm("metadata", "get", vm, "xml").stdout
    assert "bus=\"sata\"" in stored and "dev=\"sda\"" in stored, stored
    assert json.loads(rbdvm("info", vm, "--json").stdout)["uuid"] == uuid_before, "same machine"
    assert ops.boots(vm) == 1 and "bus='virtio'" in ops.virsh(x, "dumpxml", vm).replace('"', "'"), \
        "the running guest is untouched"


@pytest.mark.side_by_side
def test_an_agent_parameter_change_is_refused_on_a_running_vm_unless_a_restart_is_allowed(cluster_vm):
    vm = cluster_vm
    res = set_json(vm, "--migration-downtime", "300", check=False)
    error = json.loads(res.stdout)["error"] if res.stdout else {}
    assert res.returncode == 4 and error.get("code") == "RESTART_NEEDED", res.stdout + res.stderr
    assert "restarts VM" in error["message"] and "--restart" in error["message"], error
    info = json.loads(rbdvm("info", vm, "--json").stdout)
    assert "migration_downtime" not in info["settings"], "nothing was written"
    r = set_json(vm, "--migration-downtime", "300", "--restart")
    assert r["restarted"] and r["status"] == "Started", r
    assert pairs(cib_primitive(vm), "instance_attributes")["migration_downtime"] == "300"
    assert wait_for(60, lambda: ops.boots(vm) == 2), "Pacemaker restarted it"


@pytest.mark.side_by_side
def test_a_disk_added_to_and_grown_under_a_running_guest(cluster_vm):
    vm = cluster_vm
    x = where(vm)
    added = json.loads(rbdvm("disk", "add", vm, "--size", "64M", "--json").stdout)
    assert added["disk"] == f"data_{vm}_0" and added["live"] and added["node"] == x, added
    assert "vdb" in ops.virsh(x, "domblklist", vm), "hot-plugged"
    assert int(ops.virsh(x, "domblkinfo", vm, "vdb").split("Capacity:")[1].split()[0]) == 64 << 20

    grown = json.loads(rbdvm("disk", "resize", vm, f"data_{vm}_0", "128M", "--json").stdout)
    assert grown["live"] and grown["guest_device"] == "vdb" and grown["before"] == 64 << 20, grown
    assert int(ops.virsh(x, "domblkinfo", vm, "vdb").split("Capacity:")[1].split()[0]) == 128 << 20, \
        "the guest sees the new size at once"
    shrink = rbdvm("disk", "resize", vm, f"data_{vm}_0", "64M", check=False)
    assert shrink.returncode == 4 and "shrinking" in shrink.stderr
    busy = rbdvm("disk", "remove", vm, f"data_{vm}_0", check=False)
    assert busy.returncode == 4 and "running" in busy.stderr
    system = rbdvm("disk", "remove", vm, f"system_{vm}", check=False)
    assert system.returncode == 4 and "system disk" in system.stderr
    assert ops.boots(vm) == 1, "no restart"

    # the definition holds the disk: after a stop and start the guest still has it
    rbdvm("stop", vm)
    rbdvm("start", vm)
    y = where(vm)
    assert "vdb" in ops.virsh(y, "domblklist", vm)
    rbdvm("stop", vm)
    assert rbdvm("disk", "remove", vm, f"data_{vm}_0").returncode == 0
    assert f"data_{vm}_0" not in rbdvm("info", vm).stdout


@pytest.mark.side_by_side
def test_a_vm_without_live_migration_moves_cold_only_when_asked(cluster_vm):
    vm = cluster_vm
    x = where(vm)
    y = other(x)
    assert set_json(vm, "--no-live-migration")["restarted"] is False
    refused = rbdvm("migrate", vm, y, check=False)
    assert refused.returncode == 4 and "--cold" in refused.stderr, refused.stderr
    moved = json.loads(rbdvm("migrate", vm, y, "--cold", "--json").stdout)
    assert moved["node"] == y and moved["how"] == "cold", moved
    assert qemu_pids(y, vm) and not qemu_pids(x, vm)
    assert wait_for(60, lambda: ops.boots(vm) == 2), "stopped and started: the guest booted again"
    assert pairs(cib_primitive(vm), "meta_attributes")["allow-migrate"] == "false"


@pytest.fixture
def three_vms():
    """On node1: one VM that migrates live and prefers node1, one that cannot migrate live,
    one pinned to node1; and one that migrates live whose definition is then no longer
    signed (its start elsewhere is refused)."""
    vms = {"live": unique("l"), "cold": unique("c"), "pinned": unique("p"), "unsigned": unique("u")}
    opts = {"live": ["--live-migration", "--preferred-host", N1], "cold": ["--preferred-host", N1],
            "pinned": ["--pinned-host", N1], "unsigned": ["--live-migration", "--preferred-host", N1]}
    try:
        for kind, vm in vms.items():
            rbdvm("create", vm, "--image", boot_disk(), "--xml", base_xml(vm), *opts[kind],
                  "--pacemaker-params", "migration_transport=tcp")
            ops.wait_serial(vm, "READY")
        yield vms
    finally:
        rbdvm("node", "resume", N1, check=False)
        ops.on(N1, "crm_attribute", "--type", "crm_config", "--name", "migration-limit", "--delete", check=False)
        force_remove_all(vms.values())


def test_a_node_drained_of_three_vms_and_resumed(three_vms):
    """Drained with a limit of one live migration at a time: each VM goes its way, and the
    one whose start elsewhere is refused stops there without holding up the others; the
    report says where each went and why that one did not."""
    vms = dict(three_vms)
    assert all(where(vm) == N1 for vm in vms.values())
    bad = vms.pop("unsigned")
    listed = {n["name"]: n for n in json.loads(rbdvm("node", "list", "--json").stdout)}
    assert set(vms.values()) <= set(listed[N1]["vms"]) and not listed[N1]["drained"]

    # for maintenance, a VM pinned to the node has nowhere to go: refused before anything moves
    refused = rbdvm_error_json(4, "node", "drain", N1, "--maintenance")
    assert (refused["code"], refused["details"]["vms"]) == ("NOWHERE_TO_GO", [vms["pinned"]])
    assert all(where(vm) == N1 for vm in vms.values()) and not osd_flags()

    ops.rbd(N1, "image-meta", "remove", f"system_{bad}", "_definition_sig")
    r = json.loads(rbdvm("node", "drain", N1, "--force", "--limit", "1", "--json").stdout)
    report = {v["name"]: v for v in r["vms"]}
    assert r["settled"] and r["changed"] and r["migration_limit"] == 1, r
    assert report[vms["live"]]["node"] == N2 and report[vms["cold"]]["node"] == N2
    assert report[vms["pinned"]]["node"] is None and report[vms["pinned"]]["status"] == "Stopped"
    assert report[bad]["node"] != N2 and report[bad]["reason"], report[bad]
    assert r["still_there"] == []
    assert ops.boots(vms["live"]) == 1, "moved live"
    assert wait_for(60, lambda: ops.boots(vms["cold"]) == 2), "stopped and started elsewhere"
    listed = {n["name"]: n for n in json.loads(rbdvm("node", "list", "--json").stdout)}
    assert listed[N1]["drained"] and listed[N1]["vms"] == []
    again = json.loads(rbdvm("node", "drain", N1, "--json").stdout)
    assert not again["changed"] and again["still_there"] == [], "drain again converges"

    back = json.loads(rbdvm("node", "resume", N1, "--json").stdout)
    assert back["changed"] and back["settled"]
    assert wait_for(120, lambda: where(vms["live"]) == N1 and where(vms["pinned"]) == N1
                    and where(vms["cold"]) == N1), "preferred and pinned VMs came home"
    assert ops.boots(vms["live"]) == 1, "home live too"


def osd_flags() -> dict:
    """{CRUSH host: its flags}, as the admin reads the OSD map."""
    dump = json.loads(run([str(L.LAB_SRC / "lab"), "ceph", "--", "osd", "dump", "--format", "json"]).stdout)
    return dump.get("crush_node_flags") or {}


def maint_ceph(*args, check=True):
    """The ceph command on node1 as the maintenance user, with the caps docs/day-two.md gives."""
    return ops.on(N1, "ceph", "--id", L.MAINT_USER, *args, check=check)


def test_a_hyperconverged_node_drained_for_maintenance_keeps_ceph_from_rebalancing():
    """node1 holds the lab's OSD (CRUSH host node1). drain --maintenance moves the VM away,
    then sets noout on host node1; a re-run converges; resume clears it. Refused, before
    anything moves, while Ceph is unhealthy, or when no other node could take the VMs."""
    vm = unique()
    make_vm(vm, live_migration=True, preferred_host=N1, pacemaker_params="migration_transport=tcp")
    try:
        rbdvm("enable", vm)
        assert wait_for(60, lambda: where(vm) == N1)
        _maintenance_of_node1(vm)
    finally:
        force_remove(vm)


def _maintenance_of_node1(vm):
    # Ceph unhealthy (a global flag someone set): refused, nothing moves
    run([str(L.LAB_SRC / "lab"), "ceph", "--", "osd", "set", "noscrub"])
    try:
        refused = rbdvm_error_json(4, "node", "drain", N1, "--maintenance")
        assert refused["code"] == "CEPH_UNHEALTHY" and "OSDMAP_FLAGS" in refused["why"], refused
        assert where(vm) == N1 and not osd_flags()
    finally:
        run([str(L.LAB_SRC / "lab"), "ceph", "--", "osd", "unset", "noscrub"])

    try:
        _drained_for_maintenance(vm)
    finally:
        rbdvm("node", "resume", N1, "--maintenance", check=False)


def _drained_for_maintenance(vm):
    r = json.loads(rbdvm("node", "drain", N1, "--maintenance", "--json").stdout)
    assert r["ceph"] == {"host": N1, "osds": [0], "noout": True}, r
    assert where(vm) == N2 and r["still_there"] == []
    assert osd_flags() == {N1: ["noout"]}
    assert "noout" in maint_ceph("health", "detail").stdout
    again = json.loads(rbdvm("node", "drain", N1, "--maintenance", "--json").stdout)
    assert not again["changed"] and again["ceph"]["noout"], "re-run converges (its own flag is no refusal)"
    # the other node cannot go too: its VM would have nowhere to run
    refused = rbdvm_error_json(4, "node", "drain", N2, "--maintenance")
    assert refused["code"] == "NOWHERE_TO_GO" and where(vm) == N2
    # the user may do exactly this: no other flag, no global noout
    assert "EACCES" in maint_ceph("osd", "set-group", "noin", N1, check=False).stderr
    assert "EACCES" in maint_ceph("osd", "set", "noout", check=False).stderr

    back = json.loads(rbdvm("node", "resume", N1, "--maintenance", "--json").stdout)
    assert back["ceph"] == {"host": N1, "noout": False, "was_set": True} and back["changed"]
    assert osd_flags() == {}
    again = json.loads(rbdvm("node", "resume", N1, "--maintenance", "--json").stdout)
    assert again["ceph"]["was_set"] is False and not again["changed"]


def running_memory_mib(n: str, vm: str) -> int:
    from lxml import etree

    dom = etree.fromstring(ops.virsh(n, "dumpxml", vm).encode())
    return int(dom.findtext("memory")) // 1024   # libvirt reports KiB


@pytest.mark.side_by_side
def test_a_definition_edited_applied_with_a_restart_then_undone(cluster_vm):
    from labkit import guest

    vm = cluster_vm
    x = where(vm)
    assert running_memory_mib(x, vm) == 64
    uuid_before = json.loads(rbdvm("info", vm, "--json").stdout)["uuid"]
    bigger = guest.base_xml("ignored", str(ops.serial_path(vm)), memory_mib=96, interface=True)
    path = L.SHARED / "files" / f"{vm}.bigger.xml"
    path.write_text(bigger)
    edited = json.loads(rbdvm("edit", vm, "--xml", path, "--json").stdout)
    assert edited["changed"] and "96" in edited["diff"] and edited["applies"] == "at the next start"
    assert running_memory_mib(where(vm), vm) == 64 and ops.boots(vm) == 1, "nothing applied yet"
    info = json.loads(rbdvm("info", vm, "--json").stdout)
    assert info["uuid"] == uuid_before, "same machine: the UUID is kept"
    assert not json.loads(rbdvm("edit", vm, "--xml", path, "--json").stdout)["changed"], "same base: no change"

    # an edit applied now goes through Pacemaker (stop, start), then the undo, applied too
    rbdvm("edit", vm, "--undo")
    rbdvm("edit", vm, "--undo", "--restart")   # an undo of an undo: the 96 MiB base again
    assert wait_for(60, lambda: ops.boots(vm) == 2)
    assert running_memory_mib(where(vm), vm) == 96
    undone = json.loads(rbdvm("edit", vm, "--undo", "--restart", "--json").stdout)
    assert undone["changed"] and undone["applies"].startswith("now")
    assert wait_for(60, lambda: ops.boots(vm) == 3)
    assert running_memory_mib(where(vm), vm) == 64


@pytest.fixture
def disabled_vm():
    vm = unique()
    rbdvm("create", vm, "--image", boot_disk(), "--xml", base_xml(vm), "--disabled")
    yield vm
    force_remove(vm)


@pytest.mark.side_by_side
def test_a_rollback_restores_the_definition_the_snapshot_was_taken_with(disabled_vm):
    from labkit import guest

    vm = disabled_vm
    rbdvm("snapshot", "create", vm, "before")
    path = L.SHARED / "files" / f"{vm}.bigger.xml"
    path.write_text(guest.base_xml("ignored", str(ops.serial_path(vm)), memory_mib=96, interface=True))
    rbdvm("edit", vm, "--xml", path)
    assert stored_memory_mib(vm) == 96
    r = json.loads(rbdvm("snapshot", "rollback", vm, "before", "--json").stdout)
    assert r["definition"] == "restored", r
    assert stored_memory_mib(vm) == 64, "the definition of the snapshot's time"


def stored_memory_mib(vm: str) -> int:
    from lxml import etree

    mem = etree.fromstring(rbdvm("metadata", "get", vm, "xml").stdout.encode()).find("memory")
    return int(mem.text) if mem.get("unit") == "MiB" else int(mem.text) // 1024


@pytest.mark.side_by_side
def test_a_disk_imported_from_a_file_into_a_stopped_vm(disabled_vm):
    from labkit.testing import qcow2, read_bytes

    vm = disabled_vm
    image = qcow2(f"{vm}.extra.qcow2", "8M", writes=[(4096, 4096, 0x5A)])
    added = json.loads(rbdvm("disk", "add", vm, "--image", image, "--json").stdout)
    assert added["disk"] == f"data_{vm}_0" and added["size"] == 8 << 20 and not added["live"], added
    assert read_bytes(f"data_{vm}_0", 4096, 4096) == bytes([0x5A]) * 4096
    assert f"data_{vm}_0" in rbdvm("metadata", "get", vm, "xml").stdout


@pytest.mark.side_by_side
def test_set_killed_after_storing_brings_the_resource_in_line_when_rerun(cluster_vm):
    vm = cluster_vm
    killed_at("set:stored", "set", vm, "--priority", "9")
    assert pairs(cib_primitive(vm), "meta_attributes").get("priority") != "9", "killed before the CIB"
    r = json.loads(rerun("set", vm, "--priority", "9", "--json").stdout)
    assert r["changed"] == [], "the setting was stored by the killed run"
    assert pairs(cib_primitive(vm), "meta_attributes")["priority"] == "9", "the re-run updated the resource"
    assert ops.boots(vm) == 1


@pytest.mark.side_by_side
@pytest.mark.parametrize("step", ["disk:image", "disk:group"])
def test_disk_add_killed_at_any_step_finishes_the_same_disk_when_rerun(disabled_vm, step):
    vm = disabled_vm
    killed_at(step, "disk", "add", vm, "--size", "32M")
    rerun("disk", "add", vm, "--size", "32M")
    info = json.loads(rbdvm("info", vm, "--json").stdout)
    assert [d["name"] for d in info["disks"]] == [f"system_{vm}", f"data_{vm}_0"], "one disk, not two"
    xml = rbdvm("metadata", "get", vm, "xml").stdout
    assert f"data_{vm}_0" in xml and f"data_{vm}_1" not in xml
    killed_at("disk:unreferenced", "disk", "remove", vm, f"data_{vm}_0")
    assert f"data_{vm}_0" not in rbdvm("metadata", "get", vm, "xml").stdout, "the definition went first"
    rerun("disk", "remove", vm, f"data_{vm}_0")
    info = json.loads(rbdvm("info", vm, "--json").stdout)
    assert [d["name"] for d in info["disks"]] == [f"system_{vm}"]


@pytest.mark.side_by_side
def test_a_vm_another_tool_made_without_a_base_is_refused_not_broken(disabled_vm):
    """vm_manager stores no base definition: rebuilding the definition is refused with the
    way out (an edit with a base), and nothing is half changed."""
    vm = disabled_vm
    ops.rbd(N1, "image-meta", "remove", f"system_{vm}", "_base_xml")
    # changed outside rbdvm: nothing is rebuilt from it until root accepts it
    assert "not signed by this cluster" in rbdvm_error(6, "disk", "add", vm, "--size", "8M")
    rbdvm("trust", vm, "--yes")
    before = rbdvm("metadata", "get", vm, "xml").stdout
    for args in (("disk", "add", vm, "--size", "8M"), ("set", vm, "--disk-bus", "sata"), ("edit", vm, "--undo")):
        res = rbdvm(*args, check=False)
        assert res.returncode in (3, 4) and "Traceback" not in res.stderr, (args, res.stderr)
    refused = rbdvm("disk", "add", vm, "--size", "8M", check=False).stderr
    assert "no base definition" in refused and f"rbdvm edit {vm} --xml" in refused, refused
    assert rbdvm("metadata", "get", vm, "xml").stdout == before
    info = json.loads(rbdvm("info", vm, "--json").stdout)
    assert [d["name"] for d in info["disks"]] == [f"system_{vm}"]
    path = L.SHARED / "files" / f"{vm}.base2.xml"
    path.write_text(open(base_xml(vm)).read())
    rbdvm("edit", vm, "--xml", path)
    assert rbdvm("disk", "add", vm, "--size", "8M").returncode == 0, "with a base, it works"
