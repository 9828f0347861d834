"""The Ansible module's declaration against its documentation, and the declared-VM rules that
need no cluster (the module runs on the lab in tests/system/test_ansible.py)."""

import ast
from pathlib import Path

import pytest
import yaml

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.ops import declared

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]
MODULE = Path(__file__).resolve().parents[2] / "ansible_collections/rbdvm/cluster/plugins/modules/vm.py"


def _module():
    tree = ast.parse(MODULE.read_text())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values, tree


def test_every_parameter_is_documented_as_declared():
    values, tree = _module()
    doc = yaml.safe_load(values["DOCUMENTATION"])["options"]
    spec_node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENT_SPEC")
    spec = {kw.arg: {k.arg: ast.unparse(k.value) for k in kw.value.keywords} for kw in spec_node.value.keywords}
    assert set(doc) == set(spec)
    for name, decl in spec.items():
        assert repr(doc[name]["type"]) == decl["type"], name
        if "default" in decl:
            assert repr(doc[name].get("default")) == decl["default"], name
    yaml.safe_load(values["EXAMPLES"])
    yaml.safe_load(values["RETURN"])


def test_settings_parameters_are_rbdvm_settings_and_seapaths_names():
    _, tree = _module()
    spec_node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENT_SPEC")
    params = {kw.arg for kw in spec_node.value.keywords}
    assert {s.name for s in vmschema.SETTINGS} <= params


def test_commands_are_cluster_vms_and_more():
    values, _ = _module()
    seapath = {"create", "remove", "list_vms", "start", "status", "stop", "clone", "list_snapshots",
               "create_snapshot", "remove_snapshot", "rollback_snapshot", "purge_image", "list_metadata",
               "get_metadata", "disable", "enable", "define_colocation", "add_pacemaker_remote",
               "remove_pacemaker_remote"}
    assert seapath <= set(values["COMMANDS"])
    assert set(values["STATES"]) == set(declared.STATES)


@pytest.mark.parametrize("a,b,same", [
    ("<domain><name>x</name></domain>", "<domain>\n  <name>x</name>\n</domain>\n", True),
    ("<domain type='kvm'><name>x</name></domain>", '<domain type="kvm"><name>x</name></domain>', True),
    ("<domain><name>x</name></domain>", "<domain><name>y</name></domain>", False),
    ("<domain><name>x</name></domain>", None, False),
])
def test_definitions_compare_once_parsed(a, b, same):
    assert declared.same_definition(a, b) is same
