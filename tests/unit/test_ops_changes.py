"""Day-two operations' decisions over a scripted environment (tests/unit/scripted.py): edit
and undo, metadata, trust review and accept, colocations, a rollback of an enabled VM, and
a disk change told to the running VM through the libvirt URI its migration uses. The lab
tests (tests/system/test_day_two.py, test_trust.py) run them on the real parts."""

import json

import pytest
from scripted import BASE_XML, disk_file, scripted_env

from rbdvm.helpers.core.errors import RbdvmError, Untrusted
from rbdvm.helpers.ops import accept, creation, disks, editing, inventory, lifecycle, metadata, placement, snapshots
from rbdvm.helpers.pacemaker import cib

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


@pytest.fixture
def env(tmp_path):
    env = scripted_env()
    creation.create(env, "vm1", disk_file(tmp_path), BASE_XML)
    return env


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


def stored(env, vm="vm1") -> dict:
    return env.session.store.images[f"system_{vm}"].metadata


def test_edit_keeps_the_identity_and_undo_restores_the_previous_definition(env):
    before = inventory.info(env, "vm1")["uuid"]
    edited = editing.edit(env, "vm1", BASE_XML.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"))
    assert edited["changed"] and "<vcpu>2</vcpu>" in stored(env)["xml"]
    assert inventory.info(env, "vm1")["uuid"] == before, "same machine"
    assert editing.edit(env, "vm1", undo=True)["changed"]
    assert "<vcpu>1</vcpu>" in stored(env)["xml"] and inventory.info(env, "vm1")["trust"] == "signed"


def test_undo_without_an_edit_and_an_edit_that_breaks_the_policy_are_refused(env):
    assert code_of(editing.edit, env, "vm1", undo=True) == "NOT_FOUND"
    hostile = BASE_XML.replace("<devices/>", "<devices><disk type='file'><source file='/etc/shadow'/>"
                                             "<target dev='vdz'/></disk></devices>")
    with pytest.raises(Untrusted, match="device policy"):
        editing.edit(env, "vm1", hostile)
    assert "/etc/shadow" not in stored(env)["xml"]


def test_metadata_user_keys_only(env):
    metadata.set_metadata(env, "vm1", "owner", "alice")
    assert metadata.list_metadata(env, "vm1") == {"owner": "alice"}
    assert code_of(metadata.set_metadata, env, "vm1", "xml", "x") == "RESERVED_KEY"
    assert code_of(metadata.get_metadata, env, "vm1", "nokey") == "KEY_NOT_FOUND"


def test_trust_signs_what_was_reviewed_and_nothing_that_changed_since(env):
    stored(env)["xml"] = stored(env)["xml"].replace("<vcpu>1</vcpu>", "<vcpu>4</vcpu>")   # written by hand
    seen = accept.review(env, "vm1")
    assert seen["definition"] != "signed"
    stored(env)["xml"] += "<!-- and again -->"
    assert code_of(accept.accept, env, "vm1", digest=seen["digest"]) == "CONFLICT"
    seen = accept.review(env, "vm1")
    assert accept.accept(env, "vm1", digest=seen["digest"])["changed"] is True
    assert inventory.info(env, "vm1")["trust"] == "signed"


def test_a_definition_that_breaks_the_policy_is_never_signed(env):
    stored(env)["xml"] = stored(env)["xml"].replace(
        "</devices>", "<disk type='block'><source dev='/dev/sda'/><target dev='vdz'/></disk></devices>")
    with pytest.raises(Untrusted, match="cannot trust VM vm1"):
        accept.accept(env, "vm1")
    assert inventory.info(env, "vm1")["trust"] == "untrusted"


def test_colocations_are_settings_and_constraints(env, tmp_path):
    creation.create(env, "vm2", disk_file(tmp_path, "b.raw"), BASE_XML)
    assert code_of(placement.colocate, env, "vm1", ["vm1"]) == "INVALID_INPUT"
    assert code_of(placement.colocate, env, "vm1", ["nosuch"]) == "VM_NOT_FOUND"
    lifecycle.enable(env, "vm1")
    lifecycle.enable(env, "vm2")
    placement.colocate(env, "vm1", ["vm2"], anti=True)
    assert json.loads(stored(env)["_colocations"]) == [{"with": "vm2", "strong": False, "anti": True}]
    colo = env.pacemaker.section("constraints").find(f"rsc_colocation[@id='{cib.colocation_id('vm1', 'vm2')}']")
    assert colo is not None and colo.get("score").startswith("-")
    placement.colocate(env, "vm1", ["vm2"], remove=True)
    assert env.pacemaker.section("constraints").find("rsc_colocation") is None


def test_a_rollback_of_an_enabled_vm_disables_it_and_enables_it_again(env):
    lifecycle.enable(env, "vm1")
    snapshots.create_snapshot(env, "vm1", "s1")
    out = lifecycle.rollback(env, "vm1", "s1")
    assert out["cluster"]["status"] == "Started" and "_reenable" not in stored(env)
    assert code_of(lifecycle.rollback, env, "vm1", "nosuch") == "SNAPSHOT_NOT_FOUND"


def test_a_rollback_stopped_while_the_vm_was_disabled_enables_it_when_run_again(env, monkeypatch):
    from scripted import cut

    lifecycle.enable(env, "vm1")
    snapshots.create_snapshot(env, "vm1", "s1")
    cut(monkeypatch, "rollback:disabled", lifecycle.rollback, env, "vm1", "s1")
    assert env.pacemaker.section("resources").find("primitive") is None, "stopped while disabled"
    assert lifecycle.rollback(env, "vm1", "s1")["cluster"]["status"] == "Started"


class Domain:
    """A running VM's libvirt domain on the node that runs it (scripted)."""

    opened: list = []

    def __init__(self, uri, vm):
        self.opened.append((uri, vm))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def attach(self, xml):
        self.attached = xml

    def resize(self, rbd_name, size):
        return "vdb"


def test_a_new_disk_reaches_the_running_vm_through_its_migration_uri(env):
    lifecycle.enable(env, "vm1")
    prim = env.pacemaker.section("resources").find("primitive")
    inst = prim.find("instance_attributes")
    for name, value in (("remoteuri", "qemu+ssh://admin@%n/system"), ("migration_network_suffix", "-mig")):
        inst.append(inst.makeelement("nvpair", id=f"vm1-{name}", name=name, value=value))
    Domain.opened = []
    env.open_domain = Domain
    added = disks.add(env, "vm1", size=1 << 20)
    assert (added["live"], added["node"]) == (True, "node1")
    assert Domain.opened == [("qemu+ssh://admin@node1-mig/system", "vm1")]
    grown = disks.resize(env, "vm1", "data_vm1_0", 2 << 20)
    assert grown["guest_device"] == "vdb"


def test_a_disk_change_stands_when_the_running_vm_cannot_be_told(env):
    from rbdvm.helpers.core.errors import ClusterUnavailable

    lifecycle.enable(env, "vm1")

    def unreachable(uri, vm):
        raise ClusterUnavailable(f"libvirt did not answer a connection to {uri}", code="LIBVIRT_UNAVAILABLE")

    env.open_domain = unreachable
    added = disks.add(env, "vm1", size=1 << 20)
    assert added["live"] is False and "next start" in added["guest"]
    assert "data_vm1_0" in stored(env)["xml"], "the storage change stands"
