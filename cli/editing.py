"""rbdvm edit."""

import click

from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.ops import editing

from .options import emit, in_session, vm_command
from .vms import read_xml


@vm_command(name="edit")
@click.option("--xml", "-x", "xml_file", metavar="FILE", help="The new base libvirt domain XML.")
@click.option("--undo", is_flag=True, help="Go back to the definition before the last edit.")
@click.option("--restart", is_flag=True,
              help="Apply it now: restart the running VM through Pacemaker (stop, then start).")
def edit(name, xml_file, undo, restart, target, as_json):
    """Give VM NAME a new base definition (--xml), or undo the last edit (--undo).

    rbdvm builds the VM's definition again from the new base: its RBD disks are added as
    at create, and its UUID and MAC addresses are kept unless the new base sets them. The
    difference is shown. It applies at the VM's next start, or now with --restart. The
    definition it replaces is kept: --undo brings it back (and --undo again, this one).
    """
    if (xml_file is None) == (not undo):
        raise UsageError("give either --xml FILE or --undo")
    r = in_session(target, editing.edit, name, read_xml(xml_file), undo=undo, restart=restart)
    emit(as_json, r, lambda r: ([r["diff"].rstrip("\n")] if r["diff"] else []) + [
        f"VM {name}: " + (f"definition changed; applies {r['applies']}" if r["changed"] else "definition unchanged")])
