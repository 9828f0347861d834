"""The one rule for reaching another node's libvirtd: the URIs a live migration uses, from
the VM's agent parameters (their names are the agent's: remoteuri, migrateuri,
migration_transport, migration_user, migration_network_suffix). A disk hot-plug or a live
resize reaches the node by the same URI, so both go through the same network and the same
credentials. Standard library only (the agent's migrate_to loads it)."""

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
