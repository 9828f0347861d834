"""Declarations (helpers/ops/declared.py, Ansible's `state:`) over a scripted environment
(tests/unit/scripted.py): the plan says what differs and only reads, applying it converges,
a second plan is empty, and a create cut short is planned to be finished. The lab's Ansible
test (tests/system/test_ansible.py) runs the same on the real parts."""

import pytest
from scripted import BASE_XML, cut, disk_file

from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.ops import declared, inventory

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


def steps(plan) -> list:
    return [s.action for s in plan.steps]


def test_a_declared_vm_is_made_once_and_then_left_alone(env, tmp_path):
    d = declared.Declared("vm1", "started", xml=BASE_XML, image=disk_file(tmp_path), metadata={"owner": "alice"},
                          settings={"priority": 5})
    plan = declared.plan(env, d)
    assert steps(plan) == ["create", "enable"]
    assert env.session.store.images == {} and env.pacemaker.writes() == [], "a plan only reads"
    declared.apply(env, d, plan)
    assert inventory.info(env, "vm1")["metadata"] == {"owner": "alice"}
    assert steps(declared.plan(env, d)) == [], "converged"


def test_a_changed_declaration_plans_only_the_difference(env, tmp_path):
    d = declared.Declared("vm1", "present", xml=BASE_XML, image=disk_file(tmp_path))
    declared.apply(env, d, declared.plan(env, d))
    changed = declared.Declared("vm1", "stopped", metadata={"site": "north"}, settings={"priority": 3})
    assert steps(declared.plan(env, changed)) == ["set", "metadata", "enable"]
    gone = declared.Declared("vm1", "absent")
    plan = declared.plan(env, gone)
    assert steps(plan) == ["remove"]
    declared.apply(env, gone, plan)
    assert env.session.store.images == {}
    assert steps(declared.plan(env, gone)) == []


def test_a_declaration_that_cannot_be_made_is_refused_by_the_plan(env, tmp_path):
    with pytest.raises(RbdvmError) as exc:
        declared.plan(env, declared.Declared("vm1", "present", xml=BASE_XML, image=str(tmp_path / "missing.qcow2")))
    assert exc.value.code == "INVALID_DISK_IMAGE"
    with pytest.raises(RbdvmError) as exc:
        declared.plan(env, declared.Declared("vm1", "present"))
    assert exc.value.code == "INVALID_INPUT", "nothing to make it from"
    with pytest.raises(RbdvmError) as exc:
        declared.plan(env, declared.Declared("vm1", "present", xml=BASE_XML, image=disk_file(tmp_path),
                                             metadata={"xml": "<domain/>"}))
    assert exc.value.code == "RESERVED_KEY"


def test_a_create_cut_short_is_planned_to_be_finished(env, tmp_path, monkeypatch):
    d = declared.Declared("vm1", "present", xml=BASE_XML, image=disk_file(tmp_path))
    cut(monkeypatch, "create:images", declared.apply, env, d, declared.plan(env, d))
    plan = declared.plan(env, d)
    assert steps(plan) == ["create"] and plan.steps[0].what.startswith("finish creating")
    declared.apply(env, d, plan)
    assert steps(declared.plan(env, d)) == []
