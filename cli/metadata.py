"""rbdvm metadata list | get | set."""

import click

from rbdvm.helpers.ops import metadata as md

from .options import ceph_command, ceph_env, emit, in_session


@click.group()
def metadata():
    """Key/value metadata of a VM (stored on its system disk).

    Keys are letters and digits; vm_name, xml, _base_xml and keys starting with _ are
    reserved for rbdvm.
    """


@metadata.command("list")
@click.argument("name")
@click.option("--all", "include_reserved", is_flag=True, help="Include rbdvm's reserved keys.")
@ceph_command
def list_(name, include_reserved, target, as_json):
    """List the metadata of VM NAME."""
    emit(as_json, in_session(target, md.list_metadata, name, include_reserved),
         lambda r: [f"{k}={v}" for k, v in r.items()])


@metadata.command()
@click.argument("name")
@click.argument("key")
@ceph_command
def get(name, key, target, as_json):
    """Print the value of KEY for VM NAME."""
    with ceph_env(target) as s:
        value = md.get_metadata(s, name, key)
    emit(as_json, {"key": key, "value": value}, lambda r: r["value"])


@metadata.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@ceph_command
def set_(name, key, value, target, as_json):
    """Set KEY to VALUE for VM NAME."""
    with ceph_env(target) as s:
        md.set_metadata(s, name, key, value)
    emit(as_json, {"key": key, "value": value}, f"{key}={value}")
