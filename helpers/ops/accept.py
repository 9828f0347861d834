"""trust: root on a cluster node reviews a VM's stored definition and settings (or the
definition recorded with one of its snapshots) and signs them: the way in for VMs made by
vm_manager, by an rbdvm from before signatures, or changed outside rbdvm on purpose.

What is signed is exactly what was reviewed: the review carries a digest of it, and the
signing refuses if the stored values changed in between (someone writing the pool while root
reads). A definition that breaks the node's device policy is never signed.
"""

import hashlib
import json

from ..ceph import trust, vmstore
from ..ceph.lease import Lease
from ..core import devpolicy, domainxml, names, signing, vmschema
from ..core.errors import Conflict, NotFound, Untrusted, UsageError
from .env import Env
from .history import recorded


def _reviewed(env: Env, vm: str, snapshot: str | None) -> tuple:
    """(record, {"xml", "base", "sig"} under review)."""
    session = env.session
    rec = vmstore.require_complete(session, vm)
    if snapshot is None:
        return rec, vmschema.current_definition(rec.metadata)
    names.check_name(snapshot, "snapshot name")
    recorded = vmschema.stored_definition(rec.metadata, vmschema.DEFINITION_AT_PREFIX + snapshot)
    if recorded is None:
        raise NotFound(f"VM {vm} has no definition recorded with snapshot {snapshot}",
                       "the snapshot does not exist, or was taken without one (a rollback to it keeps the "
                       "current definition)")
    return rec, recorded


def _digest(definition: dict, settings: dict | None) -> str:
    doc = {"xml": definition["xml"], "base": definition["base"], "settings": settings}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _problems(env: Env, vm: str, definition: dict) -> list:
    """Why the definition (and its base) may not be signed: unreadable, naming another domain,
    or refused by the node's device policy."""
    session = env.session
    policy = devpolicy.load()
    problems = []
    try:
        root = domainxml.parse(definition["xml"] or "", f"the definition of VM {vm}")
    except UsageError as exc:
        root, problems = None, [exc.message]
    if root is not None:
        named = (root.findtext("name") or "").strip()
        if named != vm:
            problems.append(f"the definition names the domain {named!r}, not {vm}")
        problems += trust.policy_problems(session, vm, definition["xml"], policy)
    if definition["base"]:
        # the base is what the next rebuild (a disk, a bus, an edit) makes a definition from
        try:
            problems += [f"base: {p}" for p in trust.policy_problems(session, vm, definition["base"], policy)]
        except UsageError as exc:
            problems.append(f"base: {exc.message}")
    return problems


def _review(env: Env, vm: str, snapshot: str | None) -> tuple:
    """(record, definition, review): one read of the VM for review() and accept()."""
    session = env.session
    rec, definition = _reviewed(env, vm, snapshot)
    problems = _problems(env, vm, definition)
    out = {"name": vm, "snapshot": snapshot, "xml": definition["xml"], "problems": problems,
           "definition": trust.definition_verdict(session, vm, definition)[0]}
    settings = None
    if snapshot is None:
        settings = signing.settings_data(rec.metadata, vmschema.SIGNED_SETTINGS)
        out["settings"] = {**vmschema.decode(rec.metadata), "colocations": vmschema.colocations(rec.metadata)}
        out["settings_state"] = trust.settings_verdict(session, vm, rec.metadata)[0]
        try:
            vmschema.VmConfig.of(rec.metadata)
        except UsageError as exc:
            problems.append(f"settings: {exc.message}")
    out["digest"] = _digest(definition, settings)
    return rec, definition, out


def review(env: Env, vm: str, snapshot: str | None = None) -> dict:
    """What `trust` would sign, what the device policy says of it, and whether it is signed
    now. `digest` names exactly this content (accept() takes it back)."""
    names.check_name(vm, "VM name")
    return _review(env, vm, snapshot)[2]


@recorded("trust", keep=("snapshot",))
def accept(env: Env, vm: str, snapshot: str | None = None, digest: str | None = None) -> dict:
    """Sign what review() showed (`digest`: refused if it changed since; None: what is there
    now). Refused when the definition breaks the device policy."""
    session = env.session
    names.check_name(vm, "VM name")
    key = trust.signing_key(session)
    with Lease(session, vm, "trust"):
        rec, definition, seen = _review(env, vm, snapshot)
        if digest is not None and seen["digest"] != digest:
            raise Conflict(f"the stored definition or settings of VM {vm} changed while they were reviewed",
                           "someone wrote them after they were shown; nothing was signed",
                           "Review them again")
        if seen["problems"]:
            raise Untrusted(f"cannot trust VM {vm}" + (f"'s snapshot {snapshot}" if snapshot else ""),
                            "; ".join(seen["problems"]),
                            "Fix the definition (rbdvm edit) or, for what this site needs, the device "
                            "policy on every node (docs/security.md)")
        values = trust.signed_definition(session, vm, definition["xml"], definition["base"], key)
        if snapshot is None:
            changed = seen["definition"] != signing.SIGNED or seen["settings_state"] != signing.SIGNED
            values.update(trust.signed_settings(session, vm, rec.metadata, key))
        else:
            changed = seen["definition"] != signing.SIGNED
            values = {vmschema.DEFINITION_AT_PREFIX + snapshot: json.dumps(
                {"xml": definition["xml"], "base": definition["base"], "sig": values[vmschema.DEFINITION_SIG]})}
        if changed:
            vmstore.set_metadata(session, names.system_disk(vm), values)
    return {"name": vm, "snapshot": snapshot, "changed": changed, "was": seen["definition"],
            "settings_were": seen.get("settings_state")}
