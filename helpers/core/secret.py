"""Where this node's signing secret comes from (signing.py derives the key from it).

In order: the file named by RBDVM_SIGNING_KEY (for tools run outside a node, e.g. the
benchmarks), a dedicated key file (/etc/rbdvm/signing.key: the same file on every node;
docs/security.md says how to make and change it), else corosync's authkey: root-only and
already identical on every node of the cluster, so signing needs no new distribution step. A file
any other user could read or write is refused: whoever reads it can sign definitions that
run as root on every node.
"""

import os
import stat

from .errors import ClusterUnavailable
from .signing import SigningKey

KEY_FILE = "/etc/rbdvm/signing.key"
COROSYNC_AUTHKEY = "/etc/corosync/authkey"
ENV = "RBDVM_SIGNING_KEY"
MIN_BYTES = 32

_cache: dict = {}


def candidates(environ=os.environ) -> list:
    if environ.get(ENV):
        return [environ[ENV]]
    return [KEY_FILE, COROSYNC_AUTHKEY]


def load(environ=os.environ, owner: int = 0) -> SigningKey:
    """This node's signing key; ClusterUnavailable saying what to do when there is none.
    `owner`: the only user the file may belong to (root; another in unit tests)."""
    paths = candidates(environ)
    for path in paths:
        if path in _cache:
            return _cache[path]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        except PermissionError:
            raise ClusterUnavailable(f"cannot read the signing secret {path}",
                                     "only root on a cluster node may sign or verify VM definitions",
                                     "Run this as root on a cluster node", code="SIGNING_SECRET") from None
        except OSError as exc:
            raise ClusterUnavailable(f"cannot read the signing secret {path}", exc.strerror or str(exc),
                                     code="SIGNING_SECRET") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _check_private(path, st, owner)
            secret = f.read()
        if len(secret) < MIN_BYTES:
            raise ClusterUnavailable(f"the signing secret {path} is too short",
                                     f"{len(secret)} bytes; at least {MIN_BYTES} random bytes are needed",
                                     "Write a new one (docs/security.md) and copy it to every node",
                                     code="SIGNING_SECRET")
        _cache[path] = SigningKey(secret, path)
        return _cache[path]
    raise ClusterUnavailable("no signing secret on this node",
                             f"none of {', '.join(paths)} exists: VM definitions are signed with corosync's "
                             "authkey or a dedicated key", "Run this on a cluster node (root), or create the "
                             f"key file {KEY_FILE} on every node", code="SIGNING_SECRET")


def _check_private(path: str, st, owner: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ClusterUnavailable(f"the signing secret {path} is not a regular file", code="SIGNING_SECRET")
    if st.st_uid != owner or st.st_mode & 0o077:
        raise ClusterUnavailable(f"the signing secret {path} is not private to root",
                                 f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}: whoever can "
                                 "read it can sign definitions that run as root on every node",
                                 f"chown root:root {path}; chmod 600 {path} (on every node)", code="SIGNING_SECRET")


def forget() -> None:
    """Drop the cached key (in tests)."""
    _cache.clear()
