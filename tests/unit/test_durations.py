"""Durations as Pacemaker reads them (core/durations.py) and the timeout settings that take
them: what SEAPATH's vm_manager hands to Pacemaker must be what rbdvm stores (pure)."""

import pytest
from lxml import etree

from rbdvm.helpers.core import domainxml, durations, vmschema
from rbdvm.helpers.core.errors import UsageError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("given, ms", [
    (120, 120000), ("120", 120000), ("120s", 120000), ("2min", 120000), ("2m", 120000), ("1h", 3600000),
    ("1hr", 3600000), ("500ms", 500), ("90 sec", 90000), (" 30s ", 30000), ("PT2M", 120000),
    ("PT1H30M", 5400000), ("P1D", 86400000), ("1500us", 2), (0, 0)])
def test_what_pacemaker_reads_is_read_the_same(given, ms):
    assert durations.milliseconds(given) == ms


@pytest.mark.parametrize("given", ["", "s", "2 weeks", "-5", -5, "1.5s", "PT", "P", "P1DT", "2min30s", True,
                                   "P1Y", "12x"])
def test_anything_else_is_no_duration(given):
    assert durations.milliseconds(given) is None


def test_timeouts_are_stored_in_whole_seconds_rounded_up_and_downtime_in_milliseconds():
    assert vmschema.encode({"stop_timeout": "2min", "migrate_to_timeout": "1500ms", "migration_downtime": "1s"}) == {
        "_stop_timeout": "120", "_migrate_to_timeout": "2", "_migration_downtime": "1000"}
    assert vmschema.encode({"migration_downtime": "250", "priority": "5", "stop_timeout": 30}) == {
        "_migration_downtime": "250", "_priority": "5", "_stop_timeout": "30"}


def test_a_bad_duration_is_refused_saying_what_is_taken():
    with pytest.raises(UsageError) as exc:
        vmschema.encode({"stop_timeout": "soon"})
    assert exc.value.details == {"setting": "_stop_timeout"} and "ISO 8601" in exc.value.message


@pytest.mark.requires("/usr/share/libvirt/schemas/domain.rng")
def test_every_disk_bus_libvirt_accepts_is_accepted():
    rng = etree.parse("/usr/share/libvirt/schemas/domaincommon.rng")
    ns = {"r": "http://relaxng.org/ns/structure/1.0"}
    target = rng.find(".//r:define[@name='diskTarget']", ns)
    buses = {v.text for v in target.find(".//r:attribute[@name='bus']", ns).iter(f"{{{ns['r']}}}value")}
    assert buses and set(domainxml.DISK_BUSES) == buses
    for bus in buses:
        assert vmschema.encode({"disk_bus": bus}) == {"_disk_bus": bus}
