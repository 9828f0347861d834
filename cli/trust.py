"""rbdvm trust."""

import click

from rbdvm.helpers.core.errors import Untrusted, UsageError
from rbdvm.helpers.ops import accept, inventory

from .options import ceph_command, ceph_env, emit, escaped

_SAID = {"signed": "signed by this cluster", "unsigned": "NOT SIGNED", "other-key": "SIGNED WITH ANOTHER KEY",
         "tampered": "SIGNATURE DOES NOT MATCH"}


def _show(r: dict) -> list:
    """The review: every stored string escaped (nothing stored can hide a line from the person
    deciding), the definition exactly as the agent would start it."""
    what = f"VM {r['name']}" + (f", definition recorded with snapshot {r['snapshot']}" if r["snapshot"] else "")
    lines = [f"== {what}", "-- the definition, exactly as a node would start it:",
             escaped((r["xml"] or "").rstrip("\n"), lines=True), "--",
             f"definition: {_SAID.get(r['definition'], r['definition'])}"]
    if "settings" in r:
        lines.append(f"settings:   {_SAID.get(r['settings_state'], r['settings_state'])}")
        lines += [f"  {escaped(k)}: {escaped(v)}" for k, v in sorted(r["settings"].items()) if v not in (None, [], {})]
    if r["problems"]:
        lines.append("device policy: REFUSED")
        lines += [f"  - {escaped(p)}" for p in r["problems"]]
    else:
        lines.append("device policy: allowed")
    return lines


@click.command(name="trust")
@click.argument("names", nargs=-1)
@click.option("--snapshot", "-s", metavar="SNAP",
              help="Review and accept the definition recorded with this snapshot (what a rollback restores).")
@click.option("--all", "all_", is_flag=True, help="Every VM of the pool/namespace that is not signed by this cluster.")
@click.option("--yes", "-y", is_flag=True, help="Sign without asking (after showing what is signed).")
@ceph_command
def trust(names, snapshot, all_, yes, target, as_json):
    """Review VM NAME's stored definition and settings and sign them for this cluster.

    A node starts only a definition this cluster signed, and enable builds a resource only
    from signed settings: whoever can write the pool with a Ceph key is not root on the
    nodes. VMs made by vm_manager or by an rbdvm from before signatures, and any VM changed
    outside rbdvm, need this one step (docs/security.md: the upgrade path). The definition,
    the settings and what the node's device policy says of them are shown first; a
    definition the policy refuses is never signed. Exactly what was shown is signed: if the
    stored values change in between, nothing is. Run as root on a cluster node.
    """
    if bool(names) == all_:
        raise UsageError("name the VMs to trust, or give --all")
    if all_ and snapshot:
        raise UsageError("--snapshot names one VM's snapshot: not with --all")
    results = []
    with ceph_env(target) as s:
        if all_:
            names = [v["name"] for v in inventory.list_vms(s) if v["trust"] == "untrusted"]
        refused = []
        for vm in names:
            r = accept.review(s, vm, snapshot)
            if not as_json:
                click.echo("\n".join(_show(r)))
            done = r["definition"] == "signed" and r.get("settings_state", "signed") == "signed"
            if r["problems"]:
                refused.append(f"{vm}: {escaped('; '.join(r['problems']))}")
                results.append({**r, "signed": False, "changed": False})
                continue
            what = "snapshot definition" if snapshot else "definition and settings"
            if not done and not yes and not click.confirm(f"Sign {vm}'s {what}?", err=True):
                results.append({**r, "signed": False, "changed": False})
                continue
            out = accept.accept(s, vm, snapshot, digest=r["digest"])
            results.append({**r, "signed": True, "changed": out["changed"]})
    emit(as_json, results, lambda rs: [f"VM {r['name']}: " + ("signed" if r["changed"] else "already signed"
                                                              if r["signed"] else "not signed") for r in rs])
    if refused:
        raise Untrusted("not signed: what would be signed is refused", " | ".join(refused),
                        "Fix the definition (rbdvm edit) or the settings (rbdvm set), or allow what this site "
                        "needs in the device policy file of every node (docs/security.md)")
