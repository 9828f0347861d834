"""Pure logic of the map settings (no Ceph, no Pacemaker): what a resource may be given."""

import pytest

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.core.errors import UsageError

pytestmark = pytest.mark.unit


def test_values_are_rendered_as_pacemaker_reads_them():
    got = vmschema.check_map("pacemaker_params", {"a": True, "b": False, "c": 5, "d": 1.5, "e": "x"})
    assert got == {"a": "true", "b": "false", "c": "5", "d": "1.5", "e": "x"}


@pytest.mark.parametrize("name,key", [(n, k) for n, keys in vmschema.RESERVED_MAP_KEYS.items() for k in keys])
def test_reserved_keys_are_refused(name, key):
    with pytest.raises(UsageError) as exc:
        vmschema.check_map(name, {key: "x"})
    assert key in exc.value.message


@pytest.mark.parametrize("value", [{"k": None}, {"k": [1]}, {"k": {"n": 1}}, ["k", "v"], "k=v", {"": "v"}])
def test_only_maps_of_plain_values(value):
    with pytest.raises(UsageError):
        vmschema.check_map("pacemaker_meta", value)


def test_stored_map_checks_what_another_tool_wrote():
    assert vmschema.stored_map({}, "pacemaker_params") == {}
    assert vmschema.stored_map({"_pacemaker_params": '{"migration_speed": 50}'},
                                 "pacemaker_params") == {"migration_speed": "50"}
    for raw in ('{"vm": "other"}', "not json", '{"x": {"y": 1}}'):
        with pytest.raises(UsageError):
            vmschema.stored_map({"_pacemaker_params": raw}, "pacemaker_params")


def test_encode_refuses_a_reserved_key():
    with pytest.raises(UsageError):
        vmschema.encode({"pacemaker_meta": {"target-role": "Started"}})
