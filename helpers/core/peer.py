"""The one rule for reaching another node's libvirtd: the URIs a live migration uses, from
the VM's agent parameters (their names are the agent's: remoteuri, migrateuri,
migration_transport, migration_user, migration_network_suffix). A disk hot-plug or a live
resize reaches the node by the same URI, so both go through the same network and the same
credentials. Standard library only (the agent's migrate_to loads it)."""

import re
from collections.abc import Mapping


def libvirt_uri(node: str, params: Mapping) -> str:
    """The libvirt URI of `node`'s libvirtd (qemu+TRANSPORT://USER@NODE+SUFFIX/system, or
    `remoteuri` with %n replaced)."""
    host = node + (params.get("migration_network_suffix") or "")
    if params.get("remoteuri"):
        return params["remoteuri"].replace("%n", host)
    transport, user = params.get("migration_transport") or "", params.get("migration_user") or ""
    scheme = "qemu" + (f"+{transport}" if transport else "")
    return f"{scheme}://{user + '@' if user else ''}{host}/system"


def data_uri(node: str, params: Mapping) -> str:
    """Where the memory of a live migration goes ("": libvirt's default, the libvirt URI's host)."""
    host = node + (params.get("migration_network_suffix") or "")
    return params["migrateuri"].replace("%n", host) if params.get("migrateuri") else ""


# libvirt's remote transports a migration may use: never ext (it runs a command) nor unix
# (a socket path on this node)
TRANSPORTS = ("tcp", "tls", "ssh", "libssh", "libssh2")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_REMOTE = re.compile(rf"qemu(?:\+(?P<transport>[a-z0-9]+))?://(?:(?P<user>[^@/?#]*)@)?(?P<host>[^:/?#@]+){_PORT}"
                     r"/system")
_MIGRATE = re.compile(rf"(?:tcp|rdma)://(?P<host>[^:/?#@]+){_PORT}/?")


def _host_refusal(host: str) -> str:
    """A host name, with %n (the target node's name) where the node goes."""
    if len(host) > 253 or not _HOST.fullmatch(host.replace("%n", "node")):
        return f"{host!r} is not a host name (letters, digits, '-', '.', and %n for the node)"
    return ""


def user_refusal(user: str) -> str:
    return "" if _USER.fullmatch(user) else "not a user name (a letter or '_', then letters, digits, '_', '.', '-')"


def suffix_refusal(suffix: str) -> str:
    return "" if not _host_refusal("node" + suffix) else "not a host name suffix (letters, digits, '-', '.')"


def remoteuri_refusal(uri: str) -> str:
    """A libvirt URI of a node: qemu[+TRANSPORT]://[USER@]HOST[:PORT]/system, nothing else (no
    query: libvirt's command=, socket=, keyfile= would run or open something on this node)."""
    m = _REMOTE.fullmatch(uri)
    if not m:
        return f"not qemu[+{'|'.join(TRANSPORTS)}]://[USER@]HOST[:PORT]/system (no query, no other path)"
    if m["transport"] and m["transport"] not in TRANSPORTS:
        return f"the transport {m['transport']!r} is not one a migration may use ({', '.join(TRANSPORTS)})"
    if m["user"] is not None and user_refusal(m["user"]):
        return f"{m['user']!r}: " + user_refusal(m["user"])
    return _host_refusal(m["host"]) or _port_refusal(m["port"])


def migrateuri_refusal(uri: str) -> str:
    """Where QEMU sends memory: tcp://HOST[:PORT] or rdma://HOST[:PORT]."""
    m = _MIGRATE.fullmatch(uri)
    if not m:
        return "not tcp://HOST[:PORT] or rdma://HOST[:PORT]"
    return _host_refusal(m["host"]) or _port_refusal(m["port"])


def _port_refusal(port) -> str:
    return "" if port is None or 0 < int(port) < 65536 else f"port {port} is not from 1 to 65535"
