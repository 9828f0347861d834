"""rbdvm enable | disable | start | stop | status | migrate."""

import click

from rbdvm.helpers import lifecycle
from rbdvm.helpers.ceph import Session

from .options import ceph_command, emit


def _line(r) -> str:
    where = f" on {r['node']}" if r.get("node") else ""
    why = f" (last failure: {r['reason']})" if r.get("reason") else ""
    return f"VM {r['name']}: {r['status']}{where}{why}"


@click.command()
@click.argument("name")
@click.option("--no-start", is_flag=True, help="Add the resource stopped (target-role Stopped).")
@ceph_command
def enable(name, no_start, target, as_json):
    """Put VM NAME under Pacemaker (ocf:rbdvm:VirtualDomain) and wait until it runs.

    The resource gets what the VM's metadata asks for: allow-migrate, priority, timeouts,
    extra params/meta/utilization, pinned or preferred host, colocations, and avoidance of
    nodes with the attribute rbdvm-no-vms=true. Enabling an enabled VM changes nothing.
    """
    with Session(target) as s:
        r = lifecycle.enable(s, name, start=not no_start)
    emit(as_json, r, lambda r: _line(r) + ("" if r["changed"] else " (already enabled)"))


@click.command()
@click.argument("name")
@ceph_command
def disable(name, target, as_json):
    """Stop VM NAME and remove it from Pacemaker with every constraint rbdvm made for it."""
    with Session(target) as s:
        r = lifecycle.disable(s, name)
    emit(as_json, r, lambda r: f"VM {name} disabled" + ("" if r["changed"] else " (it was not enabled)"))


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def start(name, as_json):
    """Start the enabled VM NAME (target-role Started) and wait until it runs."""
    emit(as_json, lifecycle.start(name), _line)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def stop(name, as_json):
    """Stop the enabled VM NAME (target-role Stopped) and wait until it is stopped."""
    emit(as_json, lifecycle.stop(name), _line)


@click.command()
@click.argument("name")
@ceph_command
def status(name, target, as_json):
    """Status of VM NAME: Undefined, Disabled, Starting, Started, Stopping, Stopped or Failed."""
    with Session(target) as s:
        emit(as_json, lifecycle.status(s, name), _line)


@click.command()
@click.argument("name")
@click.argument("node")
@ceph_command
def migrate(name, node, target, as_json):
    """Live-migrate VM NAME to NODE through Pacemaker (no reboot)."""
    with Session(target) as s:
        emit(as_json, lifecycle.migrate(s, name, node), _line)
