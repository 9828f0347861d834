"""rbdvm events [VM] and rbdvm history VM: the cluster's event history, as people read it."""

import time
from datetime import datetime, timezone

import click

from rbdvm.helpers.core import durations, timeline
from rbdvm.helpers.ops import history

from .options import ceph_command, ceph_env, emit, escaped, parse_time

_SINCE_HELP = ("From when: an ISO 8601 time (UTC if no offset), or an age such as 90s, 30min, 12h, "
               "P7D [default: {}]")


def _since(value: str | None, default: str) -> float:
    """An option's moment: an ISO 8601 time, or an age before now (a duration as Pacemaker
    reads it: 90s, 30min, 12h, P7D)."""
    value = value or default
    age = durations.seconds(value)
    if age is not None:
        return time.time() - age
    moment = parse_time(value, "--since")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _when(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _event_line(e) -> str:
    took = f" {e.took:.2f}s" if e.took is not None else ""
    info = " ".join(f"{k}={v}" for k, v in e.info.items())
    phases = " [" + ", ".join(f"{n} {s:.2f}s" for n, s in e.phases) + "]" if e.phases else ""
    return escaped(f"{_when(e.at)} {e.node:<8} {e.kind:<10} {e.vm or '-':<12} "
                   f"{'ok' if e.ok else 'FAILED'}{took}{phases} {info}".rstrip())


def _reading_notes(reading) -> list:
    notes = []
    if reading.skipped:
        notes.append(f"({reading.skipped} line(s) of the history are not rbdvm records: skipped)")
    if reading.cut:
        notes.append("(older records were left unread: the history is read up to its size bound)")
    return notes


@click.command()
@click.argument("vm", required=False)
@click.option("--since", default=None, metavar="TIME", help=_SINCE_HELP.format("24h"))
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they are recorded (Ctrl-C ends).")
@ceph_command
def events(vm, since, follow, target, as_json):
    """The cluster's history of what rbdvm and its agents did, newest last.

    Starts (with their phases), stops, live migrations (with the guest's downtime), fences and
    lost nodes (from rbdvm's Pacemaker alert agent), backups, restores, trust, drains. With VM,
    only that VM's events and the nodes'.

    The history is kept in Ceph, where any holder of the pool's key can write: it is shown as
    recorded, escaped, never trusted for a decision.
    """
    start = _since(since, "24h")
    with ceph_env(target) as env:
        reading = history.read(env, start, vm=vm)
        if as_json:
            emit(True, {"events": [_as_dict(e) for e in reading.events], "skipped": reading.skipped,
                        "cut": reading.cut}, None)
            return
        for line in [_event_line(e) for e in reading.events] + _reading_notes(reading):
            click.echo(line)
        seen = {(e.at, e.node, e.kind, e.vm) for e in reading.events}
        while follow:
            time.sleep(1)
            newer = history.read(env, time.time() - 120, vm=vm)
            for e in newer.events:
                if (e.at, e.node, e.kind, e.vm) not in seen and e.at >= start:
                    seen.add((e.at, e.node, e.kind, e.vm))
                    click.echo(_event_line(e))


def _as_dict(e) -> dict:
    return {"at": e.at, "kind": e.kind, "node": e.node, "vm": e.vm, "ok": e.ok, "took": e.took,
            "phases": [{"name": n, "seconds": s} for n, s in e.phases], "info": e.info}


@click.command("history")
@click.argument("vm")
@click.option("--since", default=None, metavar="TIME", help=_SINCE_HELP.format("P31D"))
@ceph_command
def history_(vm, since, target, as_json):
    """Each failover and live migration of VM, one line each, with its phases drawn as a bar.

    \b
    A failover runs from the crash (the last moment its node was seen) through Pacemaker
    losing the node, the fence and the start elsewhere, to the moment the VM runs again.
    A migration shows the guest's downtime.
    """
    with ceph_env(target) as env:
        found, reading = history.moves(env, vm, _since(since, "P31D"))
    if as_json:
        emit(True, {"vm": vm, "moves": [m.as_dict() for m in found], "skipped": reading.skipped,
                    "cut": reading.cut}, None)
        return
    if not found:
        click.echo(escaped(f"no failover or migration of {vm} is recorded since then"))
    for m in found:
        click.echo(escaped(_move_line(m)))
        if m.kind == "failover" and m.phases:
            click.echo("    " + " ".join(f"{g} {escaped(n)} {s:.2f}s" for g, n, s in timeline.legend(m.phases)))
    for note in _reading_notes(reading):
        click.echo(note)


def _move_line(m) -> str:
    what = f"{m.kind:<9} {m.source or '?'} -> {m.target}"
    extra = f"  downtime {m.downtime_ms} ms" if m.downtime_ms is not None else ""
    status = "" if m.ok else "  FAILED"
    return f"{_when(m.began)}  {what:<24} {m.took:7.2f}s  {timeline.bar(m.phases)}{extra}{status}"
