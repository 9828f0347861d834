"""Signing and verifying what a VM's system disk holds, for the VM's pool/namespace and the
Ceph cluster the session is connected to (core/signing.py: the scheme; core/secret.py: the
key; core/devpolicy.py: the device policy). The one owner of "may a node act on this".
"""

from ..core import devpolicy, domainxml, hints, names, secret, signing, vmschema
from ..core.errors import ClusterUnavailable, Untrusted
from ..core.hints import Hint
from . import vmstore
from .session import Session

# list/info: the VM's stored definition and settings verify; they do not; no key to tell here
TRUSTED, UNTRUSTED, UNKNOWN = "signed", "untrusted", "unknown"
SIGNED = signing.SIGNED


def binding(session: Session, vm: str) -> signing.Binding:
    t = session.target
    return signing.Binding(fsid=session.fsid(), pool=t.pool, namespace=t.namespace, vm=vm)


def signing_key(session: Session, key=None):
    """The key to sign or verify with: the caller's, the session's own (a scripted session
    in unit tests brings one), else this node's (core/secret)."""
    if key is not None:
        return key
    return session.signing_key if session.signing_key is not None else secret.load()


def _policy(session: Session, policy):
    """The device policy to apply: the caller's, the session's own, else this node's file."""
    if policy is not None:
        return policy
    return session.device_policy if session.device_policy is not None else devpolicy.load()


# ------------------------------------------------------------------ signing
def signed_definition(session: Session, vm: str, xml: str, base, key=None) -> dict:
    """The metadata that stores this definition with its signature."""
    data = signing.definition_data(xml, base)
    sig = signing.sign(signing_key(session, key), signing.DEFINITION, binding(session, vm), data)
    values = {vmschema.XML: xml, vmschema.DEFINITION_SIG: sig}
    if base is not None:
        values[vmschema.BASE_XML] = base
    return values


def signed_settings(session: Session, vm: str, metadata: dict, key=None) -> dict:
    """The signature of the settings `metadata` holds (the metadata as it will be once the
    caller's changes are written)."""
    data = signing.settings_data(metadata, vmschema.SIGNED_SETTINGS)
    sig = signing.sign(signing_key(session, key), signing.SETTINGS, binding(session, vm), data)
    return {vmschema.SETTINGS_SIG: sig}


# ------------------------------------------------------------------ verifying
def definition_verdict(session: Session, vm: str, definition: dict, key=None) -> tuple:
    """The verdict on a definition {"xml", "base", "sig"}: the VM's current one
    (vmschema.current_definition) or one recorded with a snapshot or an edit."""
    data = signing.definition_data(definition["xml"], definition["base"])
    return signing.verdict(signing_key(session, key), signing.DEFINITION, binding(session, vm), data,
                           definition.get("sig"))


def settings_verdict(session: Session, vm: str, metadata: dict, key=None) -> tuple:
    data = signing.settings_data(metadata, vmschema.SIGNED_SETTINGS)
    return signing.verdict(signing_key(session, key), signing.SETTINGS, binding(session, vm), data,
                           metadata.get(vmschema.SETTINGS_SIG))


def _refuse(state: str, key_id: str, key, vm: str, what: str, doing: str, hint: Hint) -> Untrusted:
    said = f"the stored {what} of VM {vm} is not signed by this cluster"
    return Untrusted(f"{doing}: {said}" if doing else said, signing.explain(state, key_id, key), hint=hint)


def require_definition(session: Session, vm: str, metadata: dict, doing: str, key=None) -> None:
    """Refuse (Untrusted) unless the VM's `xml` and `_base_xml` verify."""
    key = signing_key(session, key)
    state, key_id = definition_verdict(session, vm, vmschema.current_definition(metadata), key)
    if state != signing.SIGNED:
        raise _refuse(state, key_id, key, vm, "definition", doing, Hint(hints.TRUST, {"vm": vm}))


def require_settings(session: Session, vm: str, metadata: dict, doing: str, key=None) -> None:
    """Refuse (Untrusted) unless the settings Pacemaker's resource is built from verify."""
    key = signing_key(session, key)
    state, key_id = settings_verdict(session, vm, metadata, key)
    if state != signing.SIGNED:
        raise _refuse(state, key_id, key, vm, "settings", doing, Hint(hints.TRUST, {"vm": vm}))


def require_recorded(session: Session, vm: str, recorded: dict, what: str, doing: str,
                     snapshot: str | None = None, key=None) -> None:
    """Refuse a recorded definition (a snapshot's, the one before an edit) that does not
    verify: restoring it would make it the one the VM runs."""
    key = signing_key(session, key)
    state, key_id = definition_verdict(session, vm, recorded, key)
    if state != signing.SIGNED:
        hint = Hint(hints.TRUST_SNAPSHOT, {"vm": vm, "snap": snapshot}) if snapshot else Hint(hints.TRUST, {"vm": vm})
        raise _refuse(state, key_id, key, vm, what, doing, hint)


def key_here(session: Session):
    """This node's signing key, or None where it cannot be read (a listing as a user who is
    not root says "unknown" instead of failing)."""
    try:
        return signing_key(session, None)
    except ClusterUnavailable:
        return None


def state(session: Session, vm: str, metadata: dict, key) -> tuple:
    """(TRUSTED | UNTRUSTED | UNKNOWN, why) of a complete VM, for listings; `key`: key_here()."""
    if key is None:
        return UNKNOWN, "this node cannot read the signing secret"
    for what, st_key in (("definition", definition_verdict(session, vm, vmschema.current_definition(metadata), key)),
                         ("settings", settings_verdict(session, vm, metadata, key))):
        st, key_id = st_key
        if st != signing.SIGNED:
            return UNTRUSTED, f"its {what}: " + signing.explain(st, key_id, key)
    return TRUSTED, ""


# ------------------------------------------------------------------ device policy
def policy_problems(session: Session, vm: str, xml: str, policy=None) -> list:
    root = domainxml.parse(xml, f"the definition of VM {vm}")
    t = session.target
    return devpolicy.problems(root, vm=vm, pool=t.pool, namespace=t.namespace,
                              policy=_policy(session, policy))


def require_policy(session: Session, vm: str, xml: str, doing: str, policy=None) -> None:
    """Refuse (Untrusted) a definition that breaks the node's device policy, naming every
    problem, not the first."""
    policy = _policy(session, policy)
    found = policy_problems(session, vm, xml, policy)
    if found:
        said = f"the definition of VM {vm} breaks the device policy"
        raise Untrusted(f"{doing}: {said}" if doing else said,
                        "; ".join(found),
                        f"Remove those devices from the definition, or allow what this site needs in "
                        f"{devpolicy.POLICY_FILE} on every node (docs/security.md); policy used: {policy.source}")



# ------------------------------------------------------------------ what writers use
def new_definition(session: Session, vm: str, xml: str, base, doing: str, key=None) -> dict:
    """A definition rbdvm made (create, clone, edit, a rebuild): checked against the device
    policy, then signed; the metadata to write."""
    require_policy(session, vm, xml, doing)
    return signed_definition(session, vm, xml, base, key)


def write_settings(session: Session, vm: str, metadata: dict, write: dict, remove, doing: str) -> None:
    """Change settings on the system disk and sign the result. The settings stored now must
    verify first: signing on top of them would make a change made outside rbdvm legitimate."""
    require_settings(session, vm, metadata, doing)
    after = {k: v for k, v in metadata.items() if k not in remove} | write
    vmstore.set_metadata(session, names.system_disk(vm), {**write, **signed_settings(session, vm, after)},
                         remove=remove)


def runnable_xml(session: Session, vm: str, metadata: dict) -> str:
    """The definition a node may start: signed by this cluster and within this node's device
    policy (the agent, before start and after an incoming migration)."""
    require_definition(session, vm, metadata, "")
    require_policy(session, vm, metadata[vmschema.XML], "")
    return metadata[vmschema.XML]
