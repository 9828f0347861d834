"""The OSD blocklist: clients Ceph refuses from now on (their watches dropped, their writes
rejected). rbdvm adds only exact client instances (address and nonce) that Pacemaker has
confirmed fenced, each with an expiry, and removes only what it added."""

import json

from ..core.errors import ClusterUnavailable
from .session import Session

# long enough for any fenced node to be rebooted (its new clients have new nonces)
DEFAULT_SECONDS = 3600


def _mon(session: Session, cmd: dict, doing: str) -> str:
    ret, out, err = session.cluster.mon_command(json.dumps(cmd), b"", timeout=10)
    if ret != 0:
        raise ClusterUnavailable(f"Ceph refused {doing}", f"{err or ret}",
                                 f"Check that client.{session.target.client_id} has 'profile rbd' on the monitors")
    return out.decode() if isinstance(out, bytes) else out


def add(session: Session, entity: str, seconds: int = DEFAULT_SECONDS) -> None:
    """Blocklist one client instance (`IP:PORT/NONCE`, as a watcher shows it)."""
    _mon(session, {"prefix": "osd blocklist", "blocklistop": "add", "addr": entity, "expire": float(seconds)},
         f"blocklisting {entity}")


def remove(session: Session, entity: str) -> None:
    _mon(session, {"prefix": "osd blocklist", "blocklistop": "rm", "addr": entity}, f"unblocklisting {entity}")


def entries(session: Session) -> list:
    """The blocklisted addresses (`IP:PORT/NONCE`)."""
    out = _mon(session, {"prefix": "osd blocklist ls", "format": "json"}, "listing the blocklist")
    try:
        # Ceph prints the entries, then a second (range) list: "[...][]"
        value = json.JSONDecoder().raw_decode((out or "[]").strip())[0]
    except ValueError:
        return []
    return [e.get("addr") for e in value if isinstance(e, dict) and e.get("addr")] if isinstance(value, list) else []
