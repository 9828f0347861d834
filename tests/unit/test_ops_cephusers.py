"""rbdvm's Ceph users as `rbdvm ceph-users` prints them: one declaration (helpers/ceph/users.py),
commands a shell reads back as exactly those caps, and the lab's users made from the same
caps (the lab runs without rbdvm importable, so it keeps its own copy, checked here)."""

import json
import shlex

import pytest
from click.testing import CliRunner

from labkit import ceph as labceph
from labkit import layout as L
from rbdvm.cli.main import cli
from rbdvm.helpers.ceph import users
from rbdvm.helpers.ops import cephusers

pytestmark = pytest.mark.unit


def test_the_printed_commands_grant_exactly_the_declared_caps():
    out = CliRunner().invoke(cli, ["ceph-users", "--pool", "vms"]).output
    grants = [shlex.split(line.split(">")[0]) for line in out.splitlines()
              if line.startswith("ceph auth get-or-create")]
    assert [g[3] for g in grants] == [f"client.{u.client_id}" for u in users.USERS]
    for g, u in zip(grants, users.USERS):
        assert dict(zip(g[4::2], g[5::2])) == users.caps(u, "vms")
    rows = json.loads(CliRunner().invoke(cli, ["ceph-users", "--json"]).output)
    assert rows[1]["caps"]["mon"].endswith('allow command "osd down"'), "Ceph-aware failover's cap"


def test_the_listing_is_the_declaration_for_the_pool_given():
    rows = cephusers.listing("vms")
    assert [r["user"] for r in rows] == ["client.rbdvm", "client.rbdvm-fence", "client.rbdvm-history",
                                                "client.rbdvm-maintenance"]
    assert rows[0]["caps"] == {"mon": "profile rbd", "osd": "profile rbd pool=vms"}
    assert "osd" not in rows[3]["caps"], "maintenance touches no data"


def test_the_lab_grants_its_users_what_rbdvm_declares():
    lab = {user: dict(zip(caps[::2], caps[1::2])) for user, caps in labceph.USERS}
    assert lab == {u.client_id: users.caps(u, L.POOL) for u in users.USERS}
