"""The Ansible collection (ansible_collections/rbdvm/cluster, module rbdvm.cluster.vm) on the
lab (issue 19): ansible-core, from the test venv, runs playbooks on a lab node (connection
local, the venv's python as the node's interpreter): one written after SEAPATH's VM
playbooks (create, snapshot, rollback, clone, remove), one declarative. Each runs twice, the
second reporting changed=0; check mode changes nothing (read back with rbdvm); a bad
parameter fails with a clear message and changes nothing."""

import json
import time
from pathlib import Path

import pytest

from labkit import layout as L
from labkit import ops
from labkit.testing import base_xml, boot_disk, force_remove_all, rbdvm, rbdvm_json, unique, where

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed"), pytest.mark.side_by_side]
REPO = Path(__file__).resolve().parents[2]
N1 = L.NODES[0]
PLAYBOOK_ENV = {
    "ANSIBLE_COLLECTIONS_PATH": str(REPO),
    "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).parent / "ansible_plugins"),
    "ANSIBLE_STDOUT_CALLBACK": "results_json",
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_NOCOLOR": "1",
}


@pytest.fixture
def play(tmp_path):
    """play(tasks, check=False, diff=False) -> (rc, {"changed", "failures", "tasks": [results]})
    for a playbook of `tasks` run on node1 by ansible-playbook."""
    (tmp_path / "inventory").write_text(
        f"{N1} ansible_connection=local ansible_python_interpreter={L.VENV / 'bin' / 'python'}\n")
    env = {**PLAYBOOK_ENV, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "tmp"),
           "HOME": str(tmp_path)}

    def run(tasks, check=False, diff=False):
        book = tmp_path / "play.yml"
        book.write_text(json.dumps([{"hosts": N1, "gather_facts": False, "tasks": tasks}]))
        argv = [str(L.VENV / "bin" / "ansible-playbook"), "-i", str(tmp_path / "inventory"), str(book)]
        argv += ["--check"] * check + ["--diff"] * diff
        res = ops.on(N1, "env", *(f"{k}={v}" for k, v in env.items()), *argv, check=False, timeout=600)
        try:
            out = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"ansible-playbook gave no JSON ({res.returncode}):\n{res.stdout}\n{res.stderr}") \
                from None
        stats = out["stats"][N1]
        results = [t["result"] for t in out["tasks"]]
        return res.returncode, {"changed": stats["changed"], "failures": stats["failures"], "tasks": results}
    return run


def vm_task(title=None, **params):
    return {"name": title or f"{params.get('command') or params.get('state')} {params.get('name', '')}",
            "rbdvm.cluster.vm": params}


def _cleanup(*vms):
    force_remove_all(vms)


def test_a_seapath_style_playbook_creates_snapshots_rolls_back_clones_removes_and_runs_twice_unchanged(play):
    vm, clone, old = unique("g"), unique("c"), unique("o")
    xml = Path(base_xml(vm)).read_text()
    # a VM made before, by hand: the playbook removes it
    rbdvm("create", "--disabled", old, "--image", boot_disk(), "--xml", base_xml(old))
    tasks = [
        vm_task("is it there", command="status", name=vm),
        vm_task(command="create", name=vm, system_image=boot_disk(), xml=xml, live_migration=True,
                enable=False, metadata={"site": "substation-a"}, priority=5),
        {**vm_task(command="create_snapshot", name=vm, snapshot_name="beforeupgrade"), "register": "snap"},
        # an upgrade that went wrong would be here: the VM goes back to the snapshot just taken
        {**vm_task(command="rollback_snapshot", name=vm, snapshot_name="beforeupgrade"),
         "when": "snap is changed"},
        vm_task(command="clone", name=clone, src_name=vm, xml=Path(base_xml(clone)).read_text(), enable=False),
        vm_task(command="remove", name=old),
        vm_task(command="get_metadata", name=vm, metadata_name="site"),
        vm_task(command="list_snapshots", name=vm),
        vm_task(command="list_vms"),
    ]
    try:
        rc, first = play(tasks)
        assert rc == 0 and first["failures"] == 0, first
        assert first["tasks"][0]["status"] == "Undefined", "cluster_vm's word for a missing VM"
        assert [t.get("changed") for t in first["tasks"][1:6]] == [True, True, True, True, True], first["tasks"]
        assert first["tasks"][6]["metadata_value"] == "substation-a"
        assert first["tasks"][7]["list_snapshots"] == ["beforeupgrade"]
        assert {vm, clone} <= set(first["tasks"][8]["list_vms"]) and old not in first["tasks"][8]["list_vms"]
        info = rbdvm_json("info", clone)
        assert info["cloned_from"]["vm"] == vm and info["settings"]["priority"] == 5
        assert rbdvm("info", old, check=False).returncode == 3
        # check mode refuses what a run would (it once sliced snapshots[:-1] and said "nothing")
        rc, checked = play([vm_task(command="purge_image", name=vm, purge_number=-1)], check=True)
        assert rc != 0 and "must not be negative" in checked["tasks"][0]["msg"], checked

        rc, second = play(tasks)
        assert rc == 0 and second["changed"] == 0, [t.get("actions") for t in second["tasks"]]
        assert second["tasks"][3].get("skipped"), "no snapshot taken, no rollback"
    finally:
        _cleanup(clone, vm, old)


def test_declared_vms_converge_idempotently_check_mode_changes_nothing(play):
    run_vm, kept, gone = unique("d"), unique("p"), unique("x")
    rbdvm("create", "--disabled", gone, "--image", boot_disk(), "--xml", base_xml(gone))

    def tasks(priority=5, site="a", kept_state="present"):
        return [
            vm_task(state="started", name=run_vm, system_image=boot_disk(), xml=Path(base_xml(run_vm)).read_text(),
                    priority=priority, metadata={"site": site}),
            vm_task(state=kept_state, name=kept, system_image=boot_disk(), xml=Path(base_xml(kept)).read_text()),
            vm_task(state="absent", name=gone),
        ]
    try:
        rc, first = play(tasks())
        assert rc == 0 and first["failures"] == 0, first
        assert [t["changed"] for t in first["tasks"]] == [True, True, True]
        assert first["tasks"][0]["vm_status"] == "Started" and where(run_vm)
        assert first["tasks"][0]["status"] == f"Started {where(run_vm)}", "cluster_vm's words: Pacemaker's"
        ops.wait_serial(run_vm, "READY")   # a guest stops on ACPI only once booted
        assert rbdvm_json("info", kept)["state"] == "complete"
        assert rbdvm("info", gone, check=False).returncode == 3

        rc, second = play(tasks())
        assert rc == 0 and second["changed"] == 0, [t.get("actions") for t in second["tasks"]]

        # check mode: says what would change, with a diff; changes nothing
        rc, checked = play(tasks(priority=7, site="b", kept_state="started"), check=True, diff=True)
        assert rc == 0 and checked["changed"] == 2, checked
        actions = checked["tasks"][0]["actions"]
        assert any("priority 5 -> 7" in a for a in actions) and any("site" in a for a in actions), actions
        assert checked["tasks"][1]["actions"] == [f"put VM {kept} under Pacemaker and start it"]
        diff = checked["tasks"][0]["diff"]
        assert diff["before"]["settings"]["priority"] == 5 and diff["after"]["settings"]["priority"] == 7
        info = rbdvm_json("info", run_vm)
        assert info["settings"]["priority"] == 5 and info["metadata"] == {"site": "a"}
        assert rbdvm_json("status", kept)["status"] == "Disabled"

        # and for real: the changes are made in place (no restart needed for these)
        rc, changed = play(tasks(priority=7, site="b"))
        assert rc == 0 and changed["changed"] == 1, changed
        info = rbdvm_json("info", run_vm)
        assert info["settings"]["priority"] == 7 and info["metadata"] == {"site": "b"}
        assert where(run_vm), "still running"
    finally:
        _cleanup(run_vm, kept, gone)


def test_bad_parameters_fail_with_a_clear_message_and_change_nothing(play):
    vm = unique("b")
    xml = Path(base_xml(vm)).read_text()
    cases = [
        (vm_task(command="create", name=vm, system_image=boot_disk(), xml=xml, crm_config_cmd=["location x"]),
         "crm_config_cmd is not supported by rbdvm"),
        (vm_task(command="add_pacemaker_remote", name=vm, remote_name="r 1", remote_address="10.0.0.1"),
         "_remote_node is not valid"),
        (vm_task(command="create", name=vm, system_image=boot_disk(), xml=xml, priority="high"),
         "priority"),
        (vm_task(command="create", name="bad name!", system_image=boot_disk(), xml=xml),
         "VM name"),
        (vm_task(command="create", name=vm, system_image="/nonexistent.qcow2", xml=xml),
         "/nonexistent.qcow2"),
        (vm_task(command="create", name=vm, system_image=boot_disk(), xml=xml,
                 pacemaker_params={"pool": "other"}), "may not set 'pool'"),
        (vm_task(command="create", name=vm, system_image=boot_disk(), xml="<domain><name>x"),
         "XML"),
        (vm_task(command="create", name=vm, system_image=boot_disk(), xml=xml, metadata={"xml": "<domain/>"}),
         "metadata key 'xml' is reserved"),
        (vm_task(state="present", name=vm, system_image=boot_disk(), xml=xml, metadata={"_settings_sig": "x"}),
         "metadata key"),
    ]
    try:
        # one playbook (each run of ansible-playbook costs ~1.3 s): every task fails on its own
        rc, out = play([{**task, "ignore_errors": True} for task, _ in cases])
        assert rc == 0 and len(out["tasks"]) == len(cases), out
        for (task, words), result in zip(cases, out["tasks"]):
            assert result.get("failed") and words in result["msg"], (task, words, result.get("msg"))
            assert "Traceback" not in result["msg"]
        assert rbdvm("info", vm, check=False).returncode == 3, "no VM was made"
        assert rbdvm("info", "bad name!", check=False).returncode != 0
        # check mode finds what the create would refuse: it does not promise a create that fails
        rc, out = play([cases[4][0]], check=True)
        assert rc != 0 and cases[4][1] in out["tasks"][0]["msg"], out
    finally:
        _cleanup(vm)


@pytest.mark.parametrize("step", ["create:images", "create:commit"])
def test_a_declared_create_killed_midway_converges_when_run_again(play, step):
    """kill -9 of the module inside the create (RBDVM_FAULT_AT): the next run of the same
    playbook finishes that VM, the one after changes nothing."""
    vm = unique("k")
    short_lease = {"RBDVM_LEASE_SECONDS": "2"}
    task = {**vm_task(state="present", name=vm, system_image=boot_disk(), xml=Path(base_xml(vm)).read_text()),
            "environment": short_lease}
    try:
        rc, killed = play([{**task, "environment": {**short_lease, "RBDVM_FAULT_AT": step}}])
        assert rc != 0 and killed["failures"] == 1, killed
        # busy until the killed module's lease expires (as testing.rerun waits for the CLI)
        deadline = time.monotonic() + 20
        while True:
            rc, again = play([task])
            if rc == 0 or "is busy" not in again["tasks"][0].get("msg", "") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rc == 0 and again["changed"] == 1, again["tasks"]
        assert rbdvm_json("info", vm)["state"] == "complete"
        rc, third = play([task])
        assert rc == 0 and third["changed"] == 0, third["tasks"]
    finally:
        _cleanup(vm)


SEAPATH_LIKE = Path(__file__).parent / "ansible_playbooks" / "deploy_vm_like_seapath.yml"


# the test venv's ansible-core (the newest), and Debian 12's (2.14, requires_ansible's floor)
ANSIBLE_PLAYBOOKS = {"venv": str(L.VENV / "bin" / "ansible-playbook"), "debian-2.14": "/usr/bin/ansible-playbook"}


@pytest.mark.requires("/usr/bin/ansible-playbook")
@pytest.mark.parametrize("ansible", sorted(ANSIBLE_PLAYBOOKS))
def test_seapaths_three_calls_run_unchanged_in_a_play_that_lists_the_collection(tmp_path, ansible):
    """The three calls of SEAPATH's deploy_vms_cluster role (status, create,
    define_colocation) through the short name cluster_vm, in a play with collections:
    [rbdvm.cluster], once per VM of the inventory, with the values an inventory written after
    SEAPATH's example gives: each a template, so each reaches the module as text ("2min",
    "10"), and a pin with a preference (the pin wins, with a warning). Run twice: the second
    run makes nothing."""
    a, b = unique("sa"), unique("sb")
    inventory = {
        "all": {"children": {
            "cluster_machines": {"hosts": {N1: {"ansible_connection": "local",
                                                "ansible_python_interpreter": str(L.VENV / "bin" / "python")}},
                                 "vars": {"livemigration_user": "virtu"}},
            "VMs": {"hosts": {
                a: {"vm_disk": boot_disk(), "xml_path": base_xml(a), "live_migration": True,
                    "migrate_to_timeout": "2min", "migration_downtime": "500", "priority": "10",
                    "pinned_host": N1, "preferred_host": L.NODES[1]},
                b: {"vm_disk": boot_disk(), "xml_path": base_xml(b), "priority": "5", "nostart": True,
                    "colocated_vms": [a], "strong_colocation": False},
            }},
        }}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    book = tmp_path / "deploy.yml"
    book.write_text(json.dumps([{
        "name": "Deploy VMs on cluster", "hosts": "{{ groups['cluster_machines'][0] }}", "gather_facts": False,
        "collections": ["rbdvm.cluster"],
        "tasks": [{"name": "Deploy each VM", "with_items": "{{ groups['VMs'] }}",
                   "ansible.builtin.include_tasks": str(SEAPATH_LIKE)}]}]))
    env = {**PLAYBOOK_ENV, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "tmp"), "HOME": str(tmp_path)}

    def deploy():
        res = ops.on(N1, "env", *(f"{k}={v}" for k, v in env.items()), ANSIBLE_PLAYBOOKS[ansible],
                     "-i", str(tmp_path / "inventory.json"), str(book), check=False, timeout=600)
        try:
            out = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"no JSON ({res.returncode}):\n{res.stdout}\n{res.stderr}") from None
        return res.returncode, out["stats"][N1], out["tasks"]

    try:
        rc, stats, tasks = deploy()
        assert rc == 0 and stats["failures"] == 0, tasks
        statuses = [t["result"]["status"] for t in tasks if t["task"] == "Is the VM there"]
        assert statuses == ["Undefined", "Undefined"], statuses
        warnings = [w for t in tasks for w in t["result"].get("warnings", [])]
        assert any("pinned_host and preferred_host are both given" in w for w in warnings), warnings
        info = rbdvm_json("info", a)["settings"]
        assert info["pinned_host"] == N1 and "preferred_host" not in info
        assert (info["migrate_to_timeout"], info["migration_downtime"], info["priority"]) == (120, 500, 10)
        assert info["pacemaker_params"] == {"migration_user": "virtu"}
        assert where(a) == N1
        assert rbdvm_json("info", b)["colocations"] == [{"with": a, "strong": False, "anti": False}]
        assert rbdvm_json("status", b)["status"] == "Stopped"

        rc, stats, tasks = deploy()
        assert rc == 0 and stats["changed"] == 0, [t["result"].get("actions") for t in tasks]
        statuses = [t["result"]["status"] for t in tasks if t["task"] == "Is the VM there"]
        # Pacemaker's words; the observer's probe ("not installed" there) shows in the second
        assert statuses[0] == f"Started {N1}" and statuses[1].startswith("Stopped"), statuses
        assert "(disabled)" in statuses[1], statuses
    finally:
        _cleanup(b, a)


def test_status_start_stop_backup_and_restore_through_the_module(play, tmp_path):
    """status says what cluster_vm says (Pacemaker's words) and rbdvm's reading beside it;
    start and stop; a backup while it runs, then a restore as a new VM (SEAPATH ships a
    backup role)."""
    vm, copy = unique("m"), unique("r")
    # the backup reaches the guest on whichever node runs it, as its migrations do (TCP here)
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm),
          "--pacemaker-params", "migration_transport=tcp")
    backups = str(tmp_path / "backups")
    try:
        rc, out = play([vm_task(command="enable", name=vm, nostart=True), vm_task(command="status", name=vm),
                        vm_task(command="start", name=vm), vm_task(command="status", name=vm),
                        vm_task(command="backup", name=vm, backup_dir=backups)])
        assert rc == 0 and out["failures"] == 0, out
        stopped, started, taken = out["tasks"][1], out["tasks"][3], out["tasks"][4]
        assert stopped["vm_status"] == "Stopped" and stopped["target_role"] == "Stopped"
        assert stopped["status"].startswith("Stopped") and "(disabled)" in stopped["status"], stopped["status"]
        node = where(vm)
        assert started["status"] == f"Started {node}" and started["node"] == node, started
        assert taken["changed"] and taken["backup"]["kind"] == "full", taken

        rc, out = play([vm_task(command="restore", name=vm, backup_dir=backups, restore_as=copy, nostart=True),
                        vm_task(command="stop", name=vm), vm_task(command="status", name=vm)])
        assert rc == 0 and out["failures"] == 0, out
        assert out["tasks"][0]["restored"]["backup"] == taken["backup"]["id"]
        assert rbdvm_json("status", copy)["status"] == "Stopped", "restored and enabled, not started"
        assert out["tasks"][2]["vm_status"] == "Stopped"
        rc, again = play([vm_task(command="restore", name=vm, backup_dir=backups, restore_as=copy, nostart=True)])
        assert rc == 0 and again["changed"] == 0, "restored once: run again, nothing is replaced"
    finally:
        _cleanup(copy, vm)
