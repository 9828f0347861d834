"""rbdvm ceph-users."""

import shlex

import click

from rbdvm.helpers.core import defaults
from rbdvm.helpers.ops import cephusers

from .options import emit, json_option


@click.command("ceph-users")
@click.option("--pool", default=defaults.POOL, show_default=True, help="The VMs' pool.")
@json_option
def ceph_users(pool, as_json):
    """Print the commands that create rbdvm's Ceph users with exactly the capabilities each
    needs (rbdvm itself, fence_rbdvm and Ceph-aware failover, node maintenance).

    Run them where Ceph's admin key is; each writes the user's keyring, which every cluster
    node needs in /etc/ceph (mode 0600). For a user that already exists, the printed
    `ceph auth caps` line brings its capabilities up to date (an rbdvm-fence made before
    Ceph-aware failover lacks `osd down`)."""
    rows = cephusers.listing(pool)

    def text(rs):
        lines = []
        for r in rs:
            cap_args = " ".join(f"{service} {shlex.quote(cap)}" for service, cap in r["caps"].items())
            user = r["user"]
            lines += [f"# {user}: {r['purpose']}",
                      f"ceph auth get-or-create {user} {cap_args} > /etc/ceph/ceph.{user}.keyring",
                      f"ceph auth caps {user} {cap_args}     # if it already exists", ""]
        return lines[:-1]
    emit(as_json, rows, text)
