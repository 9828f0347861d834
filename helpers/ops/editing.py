"""edit: a new base definition for a VM, and its undo.

The VM's `xml` is built again from the new base for its disks, keeping its UUID and MAC
addresses unless the new base sets them (domainxml.keep_identity), so the guest and the
network see the same machine. The definition it replaces is kept (one step back: an undo
of an undo is a redo). It applies at the VM's next start, or at once through Pacemaker when a
restart is asked for. Under the VM's lease; run again with the same base it changes nothing.
"""

import difflib

from ..ceph import trust, vmstore
from ..ceph.lease import Lease
from ..core import domainxml, names, vmschema
from ..core.errors import NotFound
from ..pacemaker import crm_mon
from . import definition, lifecycle
from .env import Env


def _diff(old: str | None, new: str) -> str:
    return "".join(difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                        "definition now", "definition after the edit"))


def edit(env: Env, vm: str, base_xml: str | None = None, undo: bool = False,
         restart: bool = False) -> dict:
    """Give VM `vm` the definition built from `base_xml` (or, `undo`, the one before the last
    edit); restart it through Pacemaker if `restart` and it runs."""
    session = env.session
    names.check_name(vm, "VM name")
    if base_xml is not None:
        domainxml.parse(base_xml, "the new base XML")
    with Lease(session, vm, "edit"):
        rec = vmstore.require_complete(session, vm)
        md = rec.metadata
        if undo:
            previous = vmschema.stored_definition(md, vmschema.PREVIOUS_DEFINITION)
            if previous is None:
                raise NotFound(f"VM {vm} has no previous definition", "it was never edited")
            # restored as it was kept, with its signature: it must verify, and pass the
            # policy of today
            trust.require_recorded(session, vm, previous, "previous definition", f"cannot undo the edit of VM {vm}")
            trust.require_policy(session, vm, previous["xml"], f"cannot undo the edit of VM {vm}")
            values = vmschema.definition_keys(previous)
        else:
            values = definition.rebuild_definition(env, vm, md, rec.disks, base_xml=base_xml)
        new_base, new_xml = values[vmschema.BASE_XML], values[vmschema.XML]
        uid = domainxml.uuid_of(new_xml)
        if uid and uid != domainxml.stored_uuid(md.get(vmschema.XML)):
            definition.check_uuid_free(env, uid, vm)
        changed = new_xml != md.get(vmschema.XML) or new_base != md.get(vmschema.BASE_XML) \
            or values[vmschema.DEFINITION_SIG] != md.get(vmschema.DEFINITION_SIG)
        diff = _diff(md.get(vmschema.XML), new_xml)
        if changed:
            vmstore.set_metadata(session, names.system_disk(vm), {
                **values, vmschema.PREVIOUS_DEFINITION: vmschema.encode_definition(md)})
    out = {"name": vm, "changed": changed, "diff": diff, "applies": "at the next start"}
    if changed and restart and env.cluster.has_resource(vm):
        st = crm_mon.vm_status(env.cluster.cluster_status(), vm, True)
        if st["status"] == "Started":
            lifecycle.stop(env, vm)
            st = lifecycle.start(env, vm)
            out.update(applies="now (restarted through Pacemaker)", status=st["status"], node=st["node"])
    return out
