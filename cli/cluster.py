"""rbdvm enable | disable | start | stop | status | migrate | pin | prefer | unpin | colocate."""

import os
import sys

import click

from rbdvm.helpers.core import migstats, vmschema
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.ops import configure, lifecycle, placement
from rbdvm.helpers.ops import console as console_op
from rbdvm.helpers.ops.lifecycle import NOT_PLACED

from .options import (
    ceph_command,
    ceph_env,
    cluster_env,
    emit,
    in_session,
    json_option,
    settings_options,
    settings_values,
    strict_option,
    vm_command,
)


def cluster_line(r) -> str:
    where = f" on {r['node']}" if r.get("node") else ""
    why = "" if not r.get("reason") else f" ({r['reason']})" if r["reason"] == NOT_PLACED \
        else f" (last failure: {r['reason']})"
    return f"VM {r['name']}: {r['status']}{where}{why}"


@click.command()
@click.argument("name")
@click.option("--no-start", is_flag=True, help="Add the resource stopped (target-role Stopped).")
@strict_option("NAME running, its cpu and hv_memory counted from its definition")
@settings_options(only=vmschema.REMOTE)
@ceph_command
def enable(name, no_start, strict, target, as_json, **kwargs):
    """Put VM NAME under Pacemaker (ocf:rbdvm:VirtualDomain) and wait until it runs.

    The resource gets what the VM's metadata asks for: allow-migrate, priority, timeouts,
    extra params/meta/utilization, pinned or preferred host, colocations, and avoidance of
    nodes with the attribute rbdvm-no-vms=true. Enabling an enabled VM changes nothing.

    --remote-node NAME makes the VM a Pacemaker guest node as it is enabled (the same as
    `rbdvm set NAME --remote-node NAME` first): Pacemaker then connects to the
    pacemaker_remoted in the guest and can run resources there (docs/guest-nodes.md).
    """
    guest = {k: v for k, v in settings_values(kwargs, only=vmschema.REMOTE).items() if v is not None}
    if guest:
        in_session(target, configure.set_settings, name, guest)
    emit(as_json, _checked(in_session(target, lifecycle.enable, name, start=not no_start, strict=strict)),
         lambda r: cluster_line(r) + ("" if r["changed"] else " (already enabled)"))


@vm_command()
def disable(name, target, as_json):
    """Stop VM NAME and remove it from Pacemaker with every constraint rbdvm made for it."""
    emit(as_json, in_session(target, lifecycle.disable, name),
         lambda r: f"VM {name} disabled" + ("" if r["changed"] else " (it was not enabled)"))


@click.command()
@click.argument("name")
@json_option
def start(name, as_json):
    """Start the enabled VM NAME (target-role Started) and wait until it runs."""
    emit(as_json, lifecycle.start(cluster_env(), name), cluster_line)


@click.command()
@click.argument("name")
@json_option
def stop(name, as_json):
    """Stop the enabled VM NAME (target-role Stopped) and wait until it is stopped."""
    emit(as_json, lifecycle.stop(cluster_env(), name), cluster_line)


@vm_command()
def status(name, target, as_json):
    """Status of VM NAME: Undefined, Disabled, Starting, Started, Migrating, Stopping, Stopped or Failed."""
    emit(as_json, in_session(target, lifecycle.status, name), cluster_line)


@vm_command()
@click.option("--force", is_flag=True, help="Take the console over from another session attached to it.")
def console(name, force, target, as_json):
    """Attach to the serial console of the running VM NAME, on whichever node runs it.

    Works from any node: the console is reached through the libvirtd of the node that runs
    the VM, by the URI its live migration uses. Ctrl-] leaves. With --json, only say where
    the console is ({name, node, uri}) without attaching.
    """
    where = in_session(target, console_op.locate, name)
    if as_json:
        emit(as_json, where, None)
        return
    if not sys.stdin.isatty():
        raise UsageError("the console needs a terminal", "standard input is not one",
                         "Run it from an interactive shell (or use --json to print where the console is)")
    click.echo(f"VM {name} runs on {where['node']}: attaching to its console ({where['uri']}); Ctrl-] leaves",
               err=True)
    os.execvp("virsh", ["virsh", "-c", where["uri"], "console", *(["--force"] if force else []), name])


@vm_command("node")
@click.option("--cold", is_flag=True,
              help="Stop the VM here and start it on NODE (a reboot of the guest): the way to move "
                   "a VM that does not allow live migration.")
@strict_option("NAME on NODE")
def migrate(name, node, cold, strict, target, as_json):
    """Move the running VM NAME to NODE through Pacemaker: live (no reboot) if the VM allows
    live migration, else refused unless --cold."""
    emit(as_json, _checked(in_session(target, lifecycle.migrate, name, node, cold=cold, strict=strict)),
         lambda r: cluster_line(r) + ("" if r["changed"] else " (already there)")
         + (" (moved cold: stopped and started)" if r["changed"] and r["how"] == "cold" else "")
         + (f"\nLive migration: {migstats.describe(r['migration'])}" if r.get("migration") else "")
         + (f"\nWarning: {r['warning']}" if r.get("warning") else ""))


def _checked(result: dict) -> dict:
    """The change's result with the N+1 check, when it changed the cluster."""
    from .capacity import checked

    return checked(result, bool(result.get("changed")))


def _placed(r) -> str:
    line = cluster_line(r) if r["status"] not in ("Disabled", "Undefined") else \
        f"VM {r['name']}: Disabled (applies when it is enabled)"
    return line + ("" if r["changed"] else " (unchanged)") + \
        ("" if r["settled"] else "; the cluster has not settled yet, see `rbdvm status`")


@vm_command("node")
def pin(name, node, target, as_json):
    """Run VM NAME only on NODE: if NODE is away, the VM stops instead of moving.

    Stored in the VM's metadata (_pinned_host, replacing a preferred host) and, while the VM
    is enabled, applied at once: a running VM moves to NODE (live if it allows migration).
    """
    emit(as_json, _checked(in_session(target, placement.pin, name, node)), _placed)


@vm_command("node")
def prefer(name, node, target, as_json):
    """Run VM NAME on NODE whenever NODE is up; elsewhere while it is away, and back after.

    NODE may be an ordered list, most preferred first (node1,node2,node3), or weighted
    nodes, higher preferred (node1:3,node2:3,node3:1, as Proxmox's node priorities): the VM
    runs on the most preferred node that is up, and moves back as better ones return.

    Stored in the VM's metadata (_preferred_host, replacing a pin); applied at once to an
    enabled VM.
    """
    emit(as_json, _checked(in_session(target, placement.prefer, name, node)), _placed)


@vm_command()
def unpin(name, target, as_json):
    """Forget VM NAME's pinned or preferred host: the cluster chooses where it runs."""
    emit(as_json, in_session(target, placement.unpin, name), _placed)


@click.command()
@click.argument("name")
@click.argument("others", nargs=-1, required=True, metavar="OTHER...")
@click.option("--anti", is_flag=True, help="Keep NAME away from the others instead of with them.")
@click.option("--strong", is_flag=True,
              help="Always (score INFINITY): rather stop NAME than break the rule. "
                   "Without it the cluster follows the rule when it can (score 1000).")
@click.option("--remove", is_flag=True, help="Forget NAME's colocations with the others.")
@ceph_command
def colocate(name, others, anti, strong, remove, target, as_json):
    """Place VM NAME with (or, --anti, away from) the VMs OTHER...

    Stored in NAME's metadata (_colocations), so disable + enable restores it; a constraint
    naming a VM that is not enabled is added when that VM is enabled.
    """
    with ceph_env(target) as s:
        r = placement.colocate(s, name, others, strong=strong, anti=anti, remove=remove)

    emit(as_json, r, lambda r: [_placed(r), f"  colocations: {colocation_text(r['colocations'])}"])


def colocation_text(colocations) -> str:
    return ", ".join(("away from " if c.get("anti") else "with ") + c["with"]
                     + (" (strong)" if c.get("strong") else "") for c in colocations) or "none"
