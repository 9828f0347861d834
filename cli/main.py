"""Entry point of the `rbdvm` command."""

import os
import sys
from importlib.metadata import version

import click

from rbdvm.helpers.core import defaults
from rbdvm.helpers.core.errors import EXIT_CODES, RbdvmError

from . import hints


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))
    return (
        "\b\nCeph defaults (no flags needed on a configured hypervisor):\n"
        f"  config {defaults.CEPH_CONF}, client {defaults.CEPH_ID} "
        f"(keyring /etc/ceph/ceph.client.{defaults.CEPH_ID}.keyring), pool {defaults.POOL};\n"
        "  override with RBDVM_CEPH_CONF, RBDVM_CEPH_ID, RBDVM_POOL, RBDVM_NAMESPACE.\n"
        f"\b\nExit codes:\n{codes}"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_epilog())
@click.version_option(version("rbdvm"), prog_name="rbdvm")
def cli():
    """Highly available virtual machines on Ceph RBD, libvirt/QEMU and Pacemaker.

    Each VM is an RBD group holding its disks; its libvirt definition lives in the
    metadata of its system disk, so no hypervisor needs a local XML file.
    """


def _register():
    from . import agent, cluster, configure, disks, editing, metadata, nodes, snapshot, trust, vms

    for command in (vms.create, vms.clone, vms.remove, vms.list_, vms.info, configure.set_, editing.edit, disks.disk,
                    snapshot.snapshot, metadata.metadata, agent.install_agent,
                    cluster.enable, cluster.disable, cluster.start, cluster.stop, cluster.status,
                    cluster.migrate, cluster.pin, cluster.prefer, cluster.unpin, cluster.colocate,
                    nodes.node, trust.trust):
        cli.add_command(command)


_register()


def main(argv=None):
    """Run the CLI; an RbdvmError becomes its message on stderr and its exit code, never a traceback."""
    try:
        cli.main(args=argv, prog_name="rbdvm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except RbdvmError as exc:
        click.echo(f"Error: {exc.message_for(hints.TABLE)}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - an operator gets a message, never a traceback
        if os.environ.get("RBDVM_DEBUG") == "1":
            raise
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} "
                   "(RBDVM_DEBUG=1 shows where; please report it)", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
