"""Entry point of the `rbdvm` command."""

import importlib
import json
import os
import sys
from importlib.metadata import version

import click

from rbdvm.helpers.core import defaults
from rbdvm.helpers.core.errors import EXIT_CODES, RbdvmError, UsageError

from . import hints, options


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))
    return (
        "\b\nCeph defaults (no flags needed on a configured hypervisor):\n"
        f"  config {defaults.CEPH_CONF}, client {defaults.CEPH_ID} "
        f"(keyring /etc/ceph/ceph.client.{defaults.CEPH_ID}.keyring), pool {defaults.POOL};\n"
        "  override with RBDVM_CEPH_CONF, RBDVM_CEPH_ID, RBDVM_POOL, RBDVM_NAMESPACE.\n"
        f"\b\nExit codes:\n{codes}"
    )


# command -> (module of rbdvm.cli, attribute): a command's modules are imported only when it
# runs, or when --help lists every command (each `rbdvm` call would otherwise import them all)
COMMANDS = {
    "create": ("vms", "create"), "adopt": ("vms", "adopt"), "clone": ("vms", "clone"),
    "remove": ("vms", "remove"), "list": ("vms", "list_"), "info": ("vms", "info"),
    "set": ("configure", "set_"), "edit": ("editing", "edit"), "disk": ("disks", "disk"),
    "snapshot": ("snapshot", "snapshot"), "backup": ("backup", "backup"), "restore": ("backup", "restore"),
    "metadata": ("metadata", "metadata"), "install-agent": ("agent", "install_agent"),
    "enable": ("cluster", "enable"), "disable": ("cluster", "disable"), "start": ("cluster", "start"),
    "stop": ("cluster", "stop"), "status": ("cluster", "status"), "migrate": ("cluster", "migrate"),
    "console": ("cluster", "console"), "pin": ("cluster", "pin"), "prefer": ("cluster", "prefer"),
    "unpin": ("cluster", "unpin"), "colocate": ("cluster", "colocate"), "node": ("nodes", "node"),
    "trust": ("trust", "trust"), "ceph-users": ("cephusers", "ceph_users"),
    "events": ("history", "events"), "history": ("history", "history_"), "exporter": ("exporter", "exporter"),
    "monitoring": ("exporter", "monitoring"), "capacity": ("capacity", "capacity"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


def every_command() -> click.Group:
    """The group with every command loaded into it, for tools that walk a group's `commands`
    (the package's man pages) instead of asking it."""
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name       # every listed name is in COMMANDS
        cli.add_command(command, name)
    return cli


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_epilog())
@click.version_option(version("rbdvm"), prog_name="rbdvm")
def cli():
    """Highly available virtual machines on Ceph RBD, libvirt/QEMU and Pacemaker.

    Each VM is an RBD group holding its disks; its libvirt definition lives in the
    metadata of its system disk, so no hypervisor needs a local XML file.
    """


def _fail(error: RbdvmError) -> None:
    """An error as people read it (stderr), or under --json as {"error": {...}} on stdout, where
    a script reads the result; the exit code is the error's either way."""
    if options.json_asked():
        click.echo(json.dumps({"error": error.as_dict(hints.TABLE)}, indent=2, sort_keys=True, default=str))
    else:
        click.echo(f"Error: {error.message_for(hints.TABLE)}", err=True)
    sys.exit(error.exit_code)


def main(argv=None):
    """Run the CLI; an RbdvmError becomes its message and its exit code, never a traceback."""
    try:
        cli.main(args=argv, prog_name="rbdvm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # click refuses a command line before any option is processed: --json is seen in it
        args = list(sys.argv[1:] if argv is None else argv)
        options_part = args[:args.index("--")] if "--" in args else args
        if "--json" in options_part:
            options.ask_json()
        if not options.json_asked():
            exc.show()
            sys.exit(exc.exit_code)
        usage = UsageError(exc.format_message())
        usage.exit_code = exc.exit_code
        _fail(usage)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except RbdvmError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - an operator gets a message, never a traceback
        if os.environ.get("RBDVM_DEBUG") == "1":
            raise
        _fail(RbdvmError(f"unexpected {type(exc).__name__}: {exc}", fix="RBDVM_DEBUG=1 shows where; please report it"))
    sys.exit(0)


if __name__ == "__main__":
    main()
