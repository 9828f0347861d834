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


@pytest.fixture
def module_code(monkeypatch):
    """The module's own code, imported (its helpers are pure), with the node in Paris."""
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location("rbdvm_ansible_vm", MODULE)
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield code
    monkeypatch.undo()
    time.tzset()


def test_purge_dates_without_a_zone_are_the_nodes_local_time_as_cluster_vm_reads_them(module_code):
    from datetime import datetime, timezone

    utc = timezone.utc
    assert module_code._purge_before({"date": "2026-01-31", "time": "08:00"}) == datetime(2026, 1, 31, 7, 0, tzinfo=utc)
    assert module_code._purge_before({"date": "2026-07-01"}) == datetime(2026, 6, 30, 22, 0, tzinfo=utc)
    assert module_code._purge_before({"iso_8601": "2026-01-31T08:00:00"}) == datetime(2026, 1, 31, 7, 0, tzinfo=utc)
    assert module_code._purge_before({"iso_8601": "2026-01-31T08:00:00+00:00"}) == datetime(2026, 1, 31, 8, 0,
                                                                                          tzinfo=utc)
    assert module_code._purge_before({"posix": 0}) == datetime(1970, 1, 1, tzinfo=utc)
