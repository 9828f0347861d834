"""A VM's failovers and migrations, read from the event history (core/events): one Move each,
with its phases in order. Pure: the records come from storage anyone with the pool's key can
write, so this is a picture for people, never an input to a decision.

A failover is the crash of the node the VM ran on, Pacemaker losing it, the fence, and the
start elsewhere up to the moment the VM runs again. The agent's start says it followed a fence
(its split-brain guard judged the old writer's node fenced); the alert agent's node-lost and
fence records, when they are there, date the detection and the fence.
"""

from dataclasses import dataclass, field

from .events import Event

# how far before a start its node-lost and fence records may be: a failover takes seconds to
# minutes, never this long
_FAILOVER_WINDOW = 900.0


@dataclass
class Move:
    kind: str                  # "failover" or "migration"
    vm: str
    began: float               # the first known moment (the crash, when known)
    took: float                # up to the moment the VM ran again
    source: str
    target: str
    ok: bool = True
    downtime_ms: int | None = None
    phases: list = field(default_factory=list)    # [(name, seconds)], in order, adding up to took

    def as_dict(self) -> dict:
        return {"kind": self.kind, "vm": self.vm, "began": self.began, "took": round(self.took, 3),
                "source": self.source, "target": self.target, "ok": self.ok, "downtime_ms": self.downtime_ms,
                "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases]}


def moves(records: list, vm: str) -> list:
    """The failovers and migrations of `vm`, oldest first."""
    ordered = sorted(records, key=lambda e: e.at)
    out = []
    placed = 0.0      # when the VM last came to its node: a node's loss before it is not its failover
    for event in ordered:
        if event.vm != vm:
            continue
        if event.kind == "migrate":
            out.append(_migration(event))
        elif event.kind == "start" and event.info.get("after_fence_of"):
            out.append(_failover(event, [e for e in ordered if e.at > placed], placed))
        if event.kind in ("start", "migrate") and event.ok:
            placed = event.end()
    return out


def _migration(event: Event) -> Move:
    downtime = event.info.get("downtime_ms")
    took = event.took or 0.0
    # a migration that succeeded is recorded by its destination, one that failed by its source
    return Move(kind="migration", vm=event.vm, began=event.at, took=took,
                source=str(event.info.get("source", "")), target=str(event.info.get("target") or event.node),
                ok=event.ok,
                downtime_ms=downtime if isinstance(downtime, int) else None,
                phases=[("live migration", took)] if took else [])


def _failover(start: Event, ordered: list, placed: float) -> Move:
    node = str(start.info.get("after_fence_of", "")).split(",")[0]
    lost = _latest(ordered, "node-lost", node, start.at)
    fence = _latest(ordered, "fence", node, start.at)
    raw = lost.info.get("last_seen") if lost is not None else None
    seen = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > placed else None
    # the known moments, each ending the phase named beside it
    points = [(None, seen), ("detection", lost.at if lost else None),
              ("fence", fence.at if fence else None), ("recovery scheduled", start.at)]
    known = [(name, float(t)) for name, t in points if t is not None and start.at - t < _FAILOVER_WINDOW]
    phases, (_, began) = [], known[0]
    at = began
    for name, moment in known[1:]:
        if moment >= at:
            phases.append((name, moment - at))
            at = moment
    phases += list(start.phases)
    return Move(kind="failover", vm=start.vm, began=began, took=start.end() - began, source=node,
                target=start.node, ok=start.ok, phases=phases)


def _latest(ordered: list, kind: str, node: str, before: float) -> Event | None:
    found = None
    for event in ordered:
        if event.at > before:
            break
        if event.kind == kind and event.info.get("target") == node and before - event.at < _FAILOVER_WINDOW:
            found = event
    return found


BAR_WIDTH = 40
# one per phase (a start has up to a dozen, with the failover's three before them)
_GLYPHS = "#=+*%@o~:x&$?!^/<>"


def bar(phases: list, width: int = BAR_WIDTH) -> str:
    """The phases as one bar of `width` characters, each drawn with its own glyph in
    proportion to its time (at least one character, so none is hidden)."""
    total = sum(s for _, s in phases)
    if total <= 0:
        return ""
    cells = [max(1, round(s / total * width)) for _, s in phases]
    return "".join(_GLYPHS[i % len(_GLYPHS)] * c for i, c in enumerate(cells))


def legend(phases: list) -> list:
    return [(_GLYPHS[i % len(_GLYPHS)], name, seconds) for i, (name, seconds) in enumerate(phases)]
