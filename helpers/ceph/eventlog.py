"""The event history in Ceph: one RADOS object per UTC day in the VMs' pool and namespace,
each record a line appended to it (an append is atomic on its OSD, so every node writes the
same object without a lock).

Bounded both ways: days older than DAYS_KEPT are removed by the writers, and a reader takes
at most READ_PER_DAY bytes from the end of a day's object and READ_TOTAL in all, whatever a
holder of the pool's key put there. Lines that are not records are counted, never used.
"""

import datetime
import time
from dataclasses import dataclass

import rados

from ..core import events
from .session import Session, ceph_errors

PREFIX = "rbdvm.events."
DAYS_KEPT = 31
READ_PER_DAY = 4 << 20
READ_TOTAL = 16 << 20


@dataclass
class Reading:
    events: list            # Event, oldest first
    skipped: int = 0        # lines that are not records (malformed, too long, forged badly)
    cut: bool = False       # a bound was reached: older records were left unread


def object_name(day: datetime.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def _day(at: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).date()


def append(session: Session, event: events.Event, trim: bool = True) -> None:
    """Add `event` to its day's object; `trim`: and remove the days past DAYS_KEPT (a week of
    them, so a week without events leaves nothing behind). The agent does not trim: its
    record is one request, the operations and the alert agent trim."""
    day = _day(event.at)
    with ceph_errors("recording an event in the history", session.target):
        session.ioctx.append(object_name(day), events.encode(event) + b"\n")
        for age in range(DAYS_KEPT + 1, DAYS_KEPT + 8) if trim else ():
            try:
                session.ioctx.remove_object(object_name(day - datetime.timedelta(days=age)))
            except rados.ObjectNotFound:
                pass


def read(session: Session, since: float, until: float | None = None) -> Reading:
    """The records dated from `since` to `until` (None: all since, up to today's), oldest
    first; newest days read first, so the bounds cut the oldest."""
    newest = time.time() if until is None else until
    first, last = _day(max(since, newest - DAYS_KEPT * 86400)), _day(newest)
    reading, budget = Reading(events=[]), READ_TOTAL
    day = last
    chunks = []
    while day >= first:
        if budget <= 0:
            reading.cut = True
            break
        data, cut = _tail(session, object_name(day), min(READ_PER_DAY, budget))
        budget -= len(data)
        reading.cut |= cut
        chunks.append(data)
        day -= datetime.timedelta(days=1)
    for data in reversed(chunks):
        for line in data.split(b"\n"):
            if not line:
                continue
            event = events.decode(line)
            if event is None:
                reading.skipped += 1
            elif since <= event.at and (until is None or event.at <= until):
                reading.events.append(event)
    reading.events.sort(key=lambda e: e.at)
    return reading


def _tail(session: Session, oid: str, most: int) -> tuple:
    """(the last whole lines of `oid` within `most` bytes, whether earlier bytes were left)."""
    with ceph_errors(f"reading the history object {oid}", session.target):
        try:
            size, _mtime = session.ioctx.stat(oid)
        except rados.ObjectNotFound:
            return b"", False
        offset = max(0, size - most)
        data = session.ioctx.read(oid, length=size - offset, offset=offset) if size > offset else b""
    if offset > 0:
        # the first line began before what was read
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    return data, offset > 0
