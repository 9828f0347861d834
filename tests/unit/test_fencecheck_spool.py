"""The self-check's spool (pure, files in a temporary directory and a scripted session): what
it ends while fenced is kept, bounded, and added to the history at the next clear look."""

import time

import pytest
from scripted import ScriptedCeph

from rbdvm.helpers.ceph import eventlog
from rbdvm.helpers.core import events
from rbdvm.ocf import fencecheck

pytestmark = pytest.mark.unit


def test_kept_while_fenced_then_added_once_and_removed(tmp_path):
    spool = str(tmp_path / "spool")
    e = events.Event(at=round(time.time() - 100, 3), kind="self-check", node="node2", vm="vm1", took=0.1)
    fencecheck._keep(spool, e)
    (tmp_path / "spool" / "junk.rec").write_bytes(b"\xff not a record")
    session = ScriptedCeph()
    fencecheck._flush(session, spool)
    assert eventlog.read(session, time.time() - 3600).events == [e]
    assert list((tmp_path / "spool").iterdir()) == []
    fencecheck._flush(session, spool)
    assert len(eventlog.read(session, time.time() - 3600).events) == 1, "added once"


def test_the_spool_is_bounded(tmp_path):
    spool = str(tmp_path / "spool")
    for i in range(fencecheck.SPOOL_MOST + 20):
        fencecheck._keep(spool, events.Event(at=1_800_000_000.0 + i, kind="self-check", node="n", vm="v"))
    assert len(list((tmp_path / "spool").iterdir())) == fencecheck.SPOOL_MOST
