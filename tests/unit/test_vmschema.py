"""Pure logic of the map settings (no Ceph, no Pacemaker): what a resource may be given."""

import pytest

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.core.errors import UsageError

pytestmark = pytest.mark.unit


def test_values_are_rendered_as_pacemaker_reads_them():
    got = vmschema.check_map("pacemaker_meta", {"a": True, "b": False, "c": 5, "d": 1.5, "e": "x"})
    assert got == {"a": "true", "b": "false", "c": "5", "d": "1.5", "e": "x"}
    assert vmschema.check_map("pacemaker_params", {"force_stop": True, "stop_margin": 5}) == \
        {"force_stop": "true", "stop_margin": "5"}


@pytest.mark.parametrize("name, entry, words", [
    ("pacemaker_params", {"remoteuri": "qemu+ext:///system?command=/bin/sh"}, "no query"),
    ("pacemaker_params", {"remoteuri": "qemu+ssh://%n/system?keyfile=/etc/corosync/authkey"}, "no query"),
    ("pacemaker_params", {"remoteuri": "qemu+unix:///system?socket=/run/x"}, "qemu[+"),
    ("pacemaker_params", {"remoteuri": "qemu+ext://%n/system"}, "transport 'ext'"),
    ("pacemaker_params", {"migrateuri": "unix:///run/x"}, "tcp://HOST"),
    ("pacemaker_params", {"migration_transport": "ext"}, "must be one of"),
    ("pacemaker_params", {"migration_network_suffix": "/../x"}, "host name suffix"),
    ("pacemaker_params", {"migration_user": "root -oProxyCommand=x"}, "user name"),
    ("pacemaker_params", {"stop_margin": "-1"}, "whole number"),
    ("pacemaker_params", {"whatever": "1"}, "not a parameter"),
    ("pacemaker_meta", {"failure-timeout": "\x1b[2J"}, "meta attribute"),
    ("pacemaker_meta", {"remote-node": "g1"}, "the remote_node setting decides it"),
    ("pacemaker_utilization", {"cpu": "two"}, "whole number"),
])
def test_every_setting_has_a_content_rule(name, entry, words):
    with pytest.raises(UsageError) as exc:
        vmschema.check_map(name, entry)
    assert words in str(exc.value), exc.value


def test_the_migration_uris_libvirt_documents_pass():
    ok = {"remoteuri": "qemu+ssh://admin@%n-mig:2222/system", "migrateuri": "tcp://%n.mig.example:49152",
          "migration_transport": "tls", "migration_user": "admin", "migration_network_suffix": ".mig"}
    assert vmschema.check_map("pacemaker_params", ok) == ok


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


@pytest.mark.parametrize("key, raw", [
    ("_disk_bus", "virtio;x"), ("_live_migration", "sure"), ("_pinned_host", "node1\x1b[2J"),
    ("_preferred_host", "node1,/x"), ("_colocations", '[{"with": "../vm2"}]'),
    ("_colocations", '[{"with": "vm2", "strong": "yes"}]'),
])
def test_a_stored_setting_out_of_its_rule_is_refused_when_read(key, raw):
    with pytest.raises(UsageError) as exc:
        vmschema.VmConfig.of({key: raw})
    assert key in str(exc.value) or exc.value.details.get("setting") == key
