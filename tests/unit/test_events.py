"""The event record's codec (pure): what rbdvm writes reads back; what it writes always fits
a line; what it reads is never trusted beyond its bounds."""

import pytest

from rbdvm.helpers.core import events

pytestmark = pytest.mark.unit


def test_a_record_reads_back():
    e = events.Event(at=1_800_000_000.5, kind="start", node="node1", vm="vm1", ok=False, took=2.25,
                     phases=(("libvirt", 0.1), ("domain created", 2.15)), info={"reason": "x", "n": 3})
    assert events.decode(events.encode(e)) == e


def test_a_record_always_fits_one_line_of_ascii():
    e = events.Event(at=1_800_000_000, kind="start", node="n" * 5000, vm="\u202e\n\x1b[2J" * 300,
                     info={f"k{i}": "v" * 500 for i in range(40)})
    line = events.encode(e)
    assert len(line) <= events.MAX_LINE and b"\n" not in line and line.isascii()
    back = events.decode(line)
    assert back is not None and back.vm.startswith("\u202e\n\x1b[2J") and len(back.node) == events.MAX_TEXT


@pytest.mark.parametrize("line", [b"", b"[]", b"{}", b'{"v":2,"at":1800000000,"kind":"start","node":"n"}',
                                  b'{"v":1,"at":"1800000000","kind":"start","node":"n"}',
                                  b'{"v":1,"at":1800000000,"kind":"Start","node":"n"}',
                                  b'{"v":1,"at":1800000000,"kind":"start","node":"n","ok":"yes"}',
                                  b'{"v":1,"at":1800000000,"kind":"start","node":"n","took":-1}',
                                  b'{"v":1,"at":1800000000,"kind":"start","node":"n","info":{"A":1}}',
                                  b'{"v":1,"at":1800000000,"kind":"start","node":"n","info":{"a":[1]}}',
                                  b'{"v":1,"at":1800000000,"kind":"start","node":"n","phases":[["a"]]}',
                                  b'{"v":1,"at":Infinity,"kind":"start","node":"n"}',
                                  b'{"v":1,"at":99,"kind":"start","node":"n"}', b"\xc3\x28"])
def test_what_is_not_a_record_is_none(line):
    assert events.decode(line) is None


def test_phases_add_up_to_the_action():
    clock = iter([0.0, 1.0, 3.5, 4.0]).__next__
    p = events.Phases(clock=clock, wall=lambda: 1_800_000_000.0)
    p.mark("a")
    p.mark("b")
    e = p.event("start", "node1", "vm1", extra=1)
    assert e.phases == (("a", 1.0), ("b", 2.5)) and e.took == 4.0 and e.info == {"extra": 1}
