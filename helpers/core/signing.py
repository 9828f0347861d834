"""Authenticating what a node acts on as root: the definition a VM runs with and the
settings its Pacemaker resource is built from.

Ceph is shared storage, not a trusted store: anyone holding a client key that may write the
pool can change an image's metadata. So rbdvm stores, next to each definition and next to the
settings, an HMAC-SHA256 under a secret only root on the cluster's nodes holds (secret.py),
bound to the Ceph cluster (its fsid), the pool, the namespace and the VM's name: a value
signed for VM A, for another pool or under another cluster's secret does not verify for B.

A signature covers content and binding, never the metadata key it is stored under: a
snapshot records the definition with its signature, and a rollback restores both as they
were, without signing anything again (re-signing on copy would launder a tampered value).

Pure: no I/O (the key is read by secret.py, the metadata by the Ceph adapters).
"""

import hashlib
import hmac
import json
from dataclasses import dataclass

SCHEME = "rbdvm-hmac-sha256-v1"
DEFINITION, SETTINGS, BACKUP = "definition", "settings", "backup"

# verdicts
SIGNED = "signed"              # verifies under this cluster's key
UNSIGNED = "unsigned"          # no signature stored (made by another tool, or before signing existed)
OTHER_KEY = "other-key"        # signed, but under another secret (another cluster, or a rotated key)
TAMPERED = "tampered"          # signed by this key for other content or another VM/pool/cluster


@dataclass(frozen=True)
class Binding:
    """Where a signed value belongs: a signature made for one binding fails for any other."""

    fsid: str
    pool: str
    namespace: str
    vm: str


class SigningKey:
    """The derived signing key; `source` says which file it came from (for messages)."""

    def __init__(self, secret: bytes, source: str):
        # never the file's bytes themselves: corosync's authkey keeps its own purpose
        self._key = hmac.new(secret, b"rbdvm: definition and settings signing key, v1", hashlib.sha256).digest()
        self.source = source
        self.key_id = hashlib.sha256(b"rbdvm key id" + self._key).hexdigest()[:16]

    def mac(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def _message(kind: str, binding: Binding, data) -> bytes:
    doc = {"scheme": SCHEME, "kind": kind, "fsid": binding.fsid, "pool": binding.pool,
           "namespace": binding.namespace, "vm": binding.vm, "data": data}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def definition_data(xml, base) -> dict:
    return {"xml": xml, "base": base}


def settings_data(metadata: dict, keys) -> dict:
    """The signed settings: every key of `keys` present in the metadata (a key removed by
    someone else changes the signed data as much as a value changed)."""
    return {k: metadata[k] for k in keys if k in metadata}


def sign(key: SigningKey, kind: str, binding: Binding, data) -> str:
    return f"{SCHEME}:{key.key_id}:{key.mac(_message(kind, binding, data))}"


def verdict(key: SigningKey, kind: str, binding: Binding, data, signature) -> tuple:
    """(one of SIGNED, UNSIGNED, OTHER_KEY, TAMPERED; the key id the signature names or "")."""
    if not signature:
        return UNSIGNED, ""
    parts = signature.split(":") if isinstance(signature, str) else []
    # a malformed signature is a refusal, never a crash (compare_digest takes ASCII only),
    # and a key id that is not one is never shown
    if len(parts) != 3 or parts[0] != SCHEME or not _hex(parts[1], 16) or not _hex(parts[2], 64):
        return TAMPERED, ""
    _, key_id, mac = parts
    if key_id != key.key_id:
        return OTHER_KEY, key_id
    try:
        expected = key.mac(_message(kind, binding, data))
    except (UnicodeEncodeError, TypeError, ValueError):
        return TAMPERED, key_id      # nothing that cannot be encoded was ever signed
    if not hmac.compare_digest(mac, expected):
        return TAMPERED, key_id
    return SIGNED, key_id


def _hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


# what each verdict means to an operator
MEANING = {
    UNSIGNED: "it carries no signature of this cluster (made by another tool, by rbdvm before "
              "definitions were signed, or its signature was removed)",
    OTHER_KEY: "it is signed with another key (key id {key_id}; this cluster's is {own}): another "
               "cluster's, or a signing key since replaced",
    TAMPERED: "its signature does not match: it was changed outside rbdvm, or copied from another "
              "VM, pool or cluster",
}


def explain(state: str, key_id: str, key: SigningKey) -> str:
    return MEANING[state].format(key_id=key_id, own=key.key_id)
