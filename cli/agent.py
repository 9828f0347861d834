"""rbdvm install-agent."""

import click

from rbdvm.ocf import install as agent_install

from .options import emit, json_option


@click.command("install-agent")
@click.option("--dir", "directory", default=agent_install.DEFAULT_DIR, show_default=True,
              help="Where Pacemaker looks for the rbdvm provider's agents.")
@click.option("--lib-dir", default=agent_install.DEFAULT_LIB_DIR, show_default=True,
              help="Where the agent's own copy of rbdvm's code goes.")
@click.option("--fence-dir", default=agent_install.DEFAULT_FENCE_DIR, show_default=True,
              help="Where pacemaker-fenced looks for fence agents (fence_rbdvm and fence_rbdvm_check go there).")
@click.option("--alert-dir", default=agent_install.DEFAULT_ALERT_DIR, show_default=True,
              help="Where the alert agent alert_rbdvm goes (the alert `rbdvm enable` declares names it there).")
@json_option
def install_agent(directory, lib_dir, fence_dir, alert_dir, as_json):
    """Install the resource agent ocf:rbdvm:VirtualDomain, the storage-fencing agent
    stonith:fence_rbdvm (with its self-check fence_rbdvm_check) and the alert agent
    alert_rbdvm (fences and lost nodes into the event history) on this node.

    The agent gets its own root-owned copy of rbdvm's code and runs on the system's Python,
    so it works for every user wherever rbdvm itself was installed; it is checked by running
    its meta-data as an unprivileged user before it replaces the previous agent. Run it on
    every cluster node, again after upgrading rbdvm. Then, for example:
    pcs resource create vm1 ocf:rbdvm:VirtualDomain vm=vm1 meta allow-migrate=true
    """
    try:
        paths = agent_install.install(directory, lib_dir, fence_dir, alert_dir)
        dropin = agent_install.install_dropin()
        if dropin:
            paths["pacemaker.service drop-in"] = dropin
    except PermissionError as exc:
        from rbdvm.helpers.core.errors import UsageError

        raise UsageError(f"cannot write {directory}", exc.strerror or str(exc), "Run it as root") from None
    emit(as_json, {"path": paths[agent_install.AGENT], "programs": paths},
         "\n".join(f"installed {path}" for path in paths.values()))
