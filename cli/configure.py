"""rbdvm set."""

import click

from rbdvm.helpers.ops import configure

from .options import emit, in_session, settings_options, settings_values, strict_option, vm_command


def _text(r) -> list:
    lines = [f"VM {r['name']}: " + (f"changed {', '.join(r['changed'])}" if r["changed"] else "nothing changed")]
    if r["definition"] != "unchanged":
        lines.append(f"  definition: {r['definition']}")
    if r.get("enabled"):
        lines.append(f"  resource updated in the cluster: {r['status']}" + (f" on {r['node']}" if r.get("node") else "")
                     + (" (Pacemaker restarted it: its agent parameters changed)" if r["restarted"] else
                        " (no restart)"))
        if not r["settled"]:
            lines.append("  the cluster had not finished acting on it when rbdvm stopped waiting")
    return lines


@vm_command(name="set")
@click.option("--restart", is_flag=True,
              help="Allow Pacemaker to restart the running VM when the change needs it "
                   "(its agent parameters change); without it such a change is refused.")
@strict_option("an enabled NAME changed")
@settings_options
def set_(name, restart, strict, target, as_json, **kwargs):
    """Change settings of VM NAME: the same options, with the same checks, as `create`.

    Only the settings given change. A map setting (--pacemaker-params, --pacemaker-meta,
    --pacemaker-utilization) adds or replaces the KEYs given; KEY= (empty) removes KEY.
    --pinned-host "" or --preferred-host "" removes the pin or preference; setting one
    replaces the other. On an enabled VM the Pacemaker resource is replaced in one atomic
    change: meta attributes, timeouts, priority and utilization apply without a restart;
    agent parameters (--pacemaker-params, --migration-downtime) make Pacemaker restart a
    running VM, which is refused unless --restart. A new --disk-bus rebuilds the definition
    (same UUID and MACs), which applies at the next start. Run again after an interruption.
    """
    result = in_session(target, configure.set_settings, name, settings_values(kwargs), restart=restart,
                        strict=strict)
    from .capacity import checked

    emit(as_json, checked(result, bool(result["changed"] and result["enabled"])), _text)
