"""The OSD blocklist: clients Ceph refuses from now on (their watches dropped, their writes
rejected). The split-brain guard adds exact client instances (address and nonce) of a node
Pacemaker confirmed fenced; storage fencing adds and removes whole addresses (`IP:0/0`:
every client from that host). Every entry has an expiry."""

import json

from ..core import timeouts
from ..core.errors import ClusterUnavailable
from .session import Session
from .session import mon_command as _mon


def add(session: Session, entity: str, seconds: int = timeouts.BLOCKLIST_EXPIRY) -> None:
    """Blocklist one client instance (`IP:PORT/NONCE`, as a watcher shows it), or every
    client of a host (`IP:0/0`)."""
    _mon(session, {"prefix": "osd blocklist", "blocklistop": "add", "addr": entity, "expire": float(seconds)},
         f"blocklisting {entity}")


def remove(session: Session, entity: str) -> None:
    _mon(session, {"prefix": "osd blocklist", "blocklistop": "rm", "addr": entity}, f"unblocklisting {entity}")


def entries(session: Session) -> list:
    """The blocklisted entries (`IP:PORT/NONCE`)."""
    out = _mon(session, {"prefix": "osd blocklist ls", "format": "json"}, "listing the blocklist")
    try:
        # Ceph prints the entries, then a second (range) list: "[...][]"
        value = json.JSONDecoder().raw_decode((out or "[]").strip())[0]
    except ValueError as exc:
        raise ClusterUnavailable("Ceph's blocklist could not be read", f"unexpected answer {out[:200]!r}") from exc
    return [e["addr"] for e in value if isinstance(e, dict) and "addr" in e]
