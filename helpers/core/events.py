"""The cluster's event history: what one record holds and its one codec (a JSON line of
bounded size). Standard library only: the agent imports it for every action it records.

Records are kept where every holder of the pool's key can write (ceph/eventlog), so a record
read back is data to show, never a fact to decide on: decode() takes any bytes, refuses what
is outside the bounds below, and never raises.
"""

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
# one encoded record, newline excluded: a writer keeps under it, a reader skips longer lines
MAX_LINE = 2048
MAX_TEXT = 200          # characters of one string
MAX_PHASES = 12
MAX_INFO = 12
# records are dated after 2020 and before 2200: anything else is not a record of ours
_EARLIEST, _LATEST = 1577836800.0, 7258118400.0
_KIND = re.compile(r"[a-z][a-z-]{0,31}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")

# what rbdvm records; a kind not listed is still shown, never counted in a history
KINDS = {
    "start": "the agent started the VM on this node, with the phases of the start",
    "stop": "the agent stopped the VM on this node",
    "migrate": "a live migration ended on its destination, with the guest's downtime",
    "fence": "Pacemaker fenced a node (reported by rbdvm's alert agent)",
    "node-lost": "Pacemaker lost a node (reported by rbdvm's alert agent)",
    "self-check": "the fence self-check ended the QEMUs of its fenced node",
    "backup": "a backup of the VM", "restore": "a restore of a VM", "trust": "a VM's definition signed",
    "drain": "a node drained", "resume": "a node resumed", "maintenance": "a node's Ceph maintenance flags",
}


# the nodes' events, written where the alert agent and the self-check write (the pool's
# default namespace), read with every namespace's VMs
NODE_KINDS = ("fence", "node-lost", "self-check")


@dataclass(frozen=True)
class Event:
    at: float                      # when the action began (seconds since the epoch, UTC)
    kind: str
    node: str                      # where it was recorded
    vm: str = ""
    ok: bool = True
    took: float | None = None      # seconds, the whole action
    phases: tuple = ()             # ((name, seconds), ...) in order
    info: dict = field(default_factory=dict)   # name -> str, int, float or bool

    def end(self) -> float:
        return self.at + (self.took or 0.0)


class Phases:
    """The phases of an action as they pass: mark(name) ends the current one."""

    def __init__(self, clock=time.monotonic, wall=time.time):
        self._clock = clock
        self.began = wall()
        self._start = self._last = clock()
        self.done: list = []
        self.info: dict = {}     # what the action learnt on the way, recorded with it

    def mark(self, name: str) -> None:
        now = self._clock()
        self.done.append((name, now - self._last))
        self._last = now

    def took(self) -> float:
        return self._clock() - self._start

    def event(self, kind: str, node: str, vm: str = "", ok: bool = True, **info) -> Event:
        return Event(at=self.began, kind=kind, node=node, vm=vm, ok=ok, took=self.took(),
                     phases=tuple(self.done), info={**self.info, **info})


def encode(event: Event) -> bytes:
    """One line (no newline), ASCII, at most MAX_LINE bytes: strings are cut to MAX_TEXT, and
    information is left out, last first, until the record fits."""
    info = {k: _cut(v) if isinstance(v, str) else v for k, v in list(event.info.items())[:MAX_INFO]}
    record: dict[str, Any] = {"v": VERSION, "at": round(event.at, 3), "kind": event.kind, "node": _cut(event.node),
              "vm": _cut(event.vm), "ok": bool(event.ok),
              "took": None if event.took is None else round(event.took, 3),
              "phases": [[_cut(n), round(s, 3)] for n, s in event.phases[:MAX_PHASES]],
              "info": info}
    while True:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
        if len(line) <= MAX_LINE or not info:
            return line[:MAX_LINE] if len(line) > MAX_LINE else line
        info.popitem()


def _cut(text: str) -> str:
    return str(text)[:MAX_TEXT]


def decode(line: bytes) -> Event | None:
    """The record in `line`, or None when it is not one: too long, not JSON, another version,
    a field of the wrong type or outside its bounds. Never raises."""
    if len(line) > MAX_LINE:
        return None
    try:
        # parse_constant: NaN and Infinity are no record's; the size bound keeps nesting shallow
        raw = json.loads(line, parse_constant=_refuse)
        return _event(raw) if isinstance(raw, dict) and raw.get("v") == VERSION else None
    except (ValueError, TypeError, RecursionError, UnicodeError):
        return None


def _refuse(name):
    raise ValueError(name)


def _event(raw: "dict[str, Any]") -> Event | None:
    at: Any = raw.get("at")
    took: Any = raw.get("took")
    if not _number(at) or not dated_sanely(at):
        return None
    if took is not None and not (_number(took) and 0 <= took <= 86400 * 7):
        return None
    kind: Any = raw.get("kind")
    node: Any = raw.get("node")
    vm: Any = raw.get("vm", "")
    if not (isinstance(kind, str) and _KIND.fullmatch(kind) and _text(node) and _text(vm)
            and isinstance(raw.get("ok", True), bool)):
        return None
    phases = raw.get("phases", [])
    if not isinstance(phases, list) or len(phases) > MAX_PHASES or not all(
            isinstance(p, list) and len(p) == 2 and _text(p[0]) and _number(p[1]) and 0 <= p[1] <= 86400
            for p in phases):
        return None
    info = raw.get("info", {})
    if not isinstance(info, dict) or len(info) > MAX_INFO or not all(
            _KEY.fullmatch(k) and (isinstance(v, bool) or _number(v) or _text(v)) for k, v in info.items()):
        return None
    return Event(at=float(at), kind=kind, node=node, vm=vm, ok=raw.get("ok", True),
                 took=None if took is None else float(took),
                 phases=tuple((n, float(s)) for n, s in phases), info=dict(info))


def dated_sanely(at: float) -> bool:
    """Whether `at` is a moment a record of ours can carry (after 2020, before 2200)."""
    return _EARLIEST <= at <= _LATEST


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT
