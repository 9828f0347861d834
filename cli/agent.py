"""rbdvm install-agent."""

import click

from rbdvm.ocf import install as agent_install

from .options import emit, json_option


@click.command("install-agent")
@click.option("--dir", "directory", default=agent_install.DEFAULT_DIR, show_default=True,
              help="Where Pacemaker looks for the rbdvm provider's agents.")
@click.option("--lib-dir", default=agent_install.DEFAULT_LIB_DIR, show_default=True,
              help="Where the agent's own copy of rbdvm's code goes.")
@json_option
def install_agent(directory, lib_dir, as_json):
    """Install the Pacemaker resource agent ocf:rbdvm:VirtualDomain on this node.

    The agent gets its own root-owned copy of rbdvm's code and runs on the system's Python,
    so it works for every user wherever rbdvm itself was installed; it is checked by running
    its meta-data as an unprivileged user before it replaces the previous agent. Run it on
    every cluster node, again after upgrading rbdvm. Then, for example:
    pcs resource create vm1 ocf:rbdvm:VirtualDomain vm=vm1 meta allow-migrate=true
    """
    try:
        path = agent_install.install(directory, lib_dir)
    except PermissionError as exc:
        from rbdvm.helpers.core.errors import UsageError

        raise UsageError(f"cannot write {directory}", exc.strerror or str(exc), "Run it as root") from None
    emit(as_json, {"path": path}, f"installed {path} (ocf:rbdvm:VirtualDomain)")
