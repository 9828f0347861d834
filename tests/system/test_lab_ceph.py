"""The lab's Ceph: healthy, least-privilege client.rbdvm, RBD usable from each node."""

import json

import pytest

from labkit import ceph, ops
from labkit import layout as L

pytestmark = [pytest.mark.lab, pytest.mark.side_by_side]

WRITE_READ = """
import rados, rbd, sys
pool, image = sys.argv[1], sys.argv[2]
data = b"rbdvm-lab " + image.encode()
with rados.Rados(conffile="/etc/ceph/ceph.conf", rados_id="rbdvm") as cluster:
    with cluster.open_ioctx(pool) as ioctx:
        rbd.RBD().create(ioctx, image, 4 << 20)
        with rbd.Image(ioctx, image) as img:
            img.write(data, 1 << 20)
        with rbd.Image(ioctx, image, read_only=True) as img:
            assert img.read(1 << 20, len(data)) == data
        rbd.RBD().remove(ioctx, image)
        print("ok", image in rbd.RBD().list(ioctx))
"""


def test_ceph_is_healthy_with_a_monitor_per_node_and_an_osd_per_hypervisor():
    s = ceph.status()
    assert s == {"health": "HEALTH_OK", "checks": [], "osds_up": 2, "osds": 2, "mgr": True,
                 "quorum": sorted(L.NODES)}
    pool = json.loads(ceph.admin("osd", "pool", "get", L.POOL, "all", "--format", "json").stdout)
    assert (pool["size"], pool["min_size"]) == (2, 1), "SEAPATH: size = hypervisors, min_size 1"
    assert json.loads(ceph.admin("osd", "pool", "application", "get", L.POOL, "--format", "json").stdout) == {"rbd": {}}


def test_rbdvm_clients_have_least_privilege_caps():
    out = json.loads(ceph.admin("auth", "get", f"client.{L.CEPH_USER}", "--format", "json").stdout)
    assert out[0]["caps"] == {"mon": "profile rbd", "osd": f"profile rbd pool={L.POOL}"}
    out = json.loads(ceph.admin("auth", "get", f"client.{L.FENCE_USER}", "--format", "json").stdout)
    assert out[0]["caps"] == {"mon": ceph.FENCE_CAPS[1], "osd": ceph.FENCE_CAPS[3]}
    out = json.loads(ceph.admin("auth", "get", f"client.{L.MAINT_USER}", "--format", "json").stdout)
    assert out[0]["caps"] == {"mon": ceph.MAINT_CAPS[1]}, "monitor only: no data"


@pytest.mark.parametrize("node", L.NODES)
def test_node_has_only_the_rbdvm_keys(node):
    files = sorted(ops.on(node, "ls", "/etc/ceph").stdout.split())
    assert files == ["ceph.client.rbdvm-fence.keyring", "ceph.client.rbdvm-history.keyring",
                     "ceph.client.rbdvm-maintenance.keyring", "ceph.client.rbdvm.keyring", "ceph.conf"]


@pytest.mark.parametrize("node", L.NODES)
def test_rbd_image_created_written_removed_as_rbdvm_from_each_node(node):
    python = str(L.VENV / "bin" / "python")
    res = ops.on(node, python, "-c", WRITE_READ, L.POOL, f"probe-{node}")
    assert res.stdout.strip() == "ok False"


@pytest.mark.parametrize("node", L.NODES)
def test_rbd_cli_works_on_each_node_with_no_flags_but_the_user(node):
    ops.rbd(node, "create", "--size", "1M", f"{L.POOL}/cli-{node}")
    try:
        assert f"cli-{node}" in ops.rbd(node, "ls", L.POOL).split()
    finally:
        ops.remove_image(node, f"cli-{node}")
    assert f"cli-{node}" not in ops.rbd(node, "ls", L.POOL).split()


def test_admin_writes_are_refused_to_rbdvm():
    # the rbdvm user cannot do what only an admin may (its caps are profile rbd only)
    res = ops.on(L.NODES[0], "ceph", "--id", L.CEPH_USER, "osd", "pool", "create", "forbidden", check=False)
    assert res.returncode != 0 and "denied" in (res.stderr + res.stdout).lower()
