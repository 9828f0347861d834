"""Backups as data (core/backupset, core/rbddiff) and the backup directory (backupdir/store)
on a temporary directory: the stream codec against hostile input, the manifest's checks, the
chain rules, restore-point choice and prune plans. Pure logic and files; the lab proves the
backups themselves on real Ceph and libvirt (tests/system/test_backup.py)."""

import io
import json
from datetime import datetime, timezone

import pytest

from rbdvm.helpers.backupdir.store import Store
from rbdvm.helpers.core import backupset, rbddiff
from rbdvm.helpers.core.errors import RbdvmError

pytestmark = pytest.mark.unit
SHA = "0" * 64


def stream(records, from_snap=None, size=1 << 20) -> bytes:
    out = io.BytesIO()
    w = rbddiff.Writer(out, "backup-x", size, from_snap)
    for rec in records:
        (w.data if rec[0] == "w" else w.zero)(rec[1], rec[2])
    w.end()
    return out.getvalue()


def test_a_stream_reads_back_as_written_and_in_bounded_pieces(monkeypatch):
    raw = stream([("w", 0, b"a" * 10), ("z", 4096, 8192), ("w", 1 << 19, b"b" * (5 << 16))], "backup-p", size=8 << 20)
    recs = list(rbddiff.read(io.BytesIO(raw)))
    assert recs[:3] == [("from", "backup-p"), ("to", "backup-x"), ("size", 8 << 20)]
    assert recs[3] == ("write", 0, b"a" * 10) and recs[4] == ("zero", 4096, 8192)
    assert recs[-1] == ("end",)
    monkeypatch.setattr(rbddiff, "PIECE", 100)     # a record's length never decides the memory used
    pieces = [r for r in rbddiff.read(io.BytesIO(stream([("w", 0, b"c" * 250)]))) if r[0] == "write"]
    assert [(o, len(d)) for _, o, d in pieces] == [(0, 100), (100, 100), (200, 50)]


@pytest.mark.parametrize("raw, why", [
    (b"rbd diff v2\n", "header"),
    (rbddiff.HEADER + b"t\x01\x00\x00\x00x" + b"w" + bytes(16), "before the size"),
    (stream([("w", 0, b"x")])[:-1], "without its end"),
    (stream([("w", 0, b"x")]) + b"junk", "after the end"),
    (stream([])[:-1] + b"w" + (1 << 20).to_bytes(8, "little") + (1).to_bytes(8, "little") + b"x" + b"e",
     "beyond the image"),
    (stream([])[:-1] + b"q", "unknown record"),
    (stream([])[:-1] + b"w" + bytes(8) + (100).to_bytes(8, "little") + b"short", "ends inside"),
    (rbddiff.HEADER + b"t" + (1 << 30).to_bytes(4, "little"), "snapshot name of"),
])
def test_a_hostile_stream_is_refused_naming_the_fault(raw, why):
    with pytest.raises(rbddiff.Malformed, match=why):
        list(rbddiff.read(io.BytesIO(raw)))


def manifest(bid, vm="vm1", parent=None, parent_digest=SHA, uuid="u1", disks=None):
    disks = disks or [{"image": f"system_{vm}", "role": "system"}]
    return {"format": backupset.FORMAT, "id": bid, "vm": vm, "uuid": uuid, "time": "2026-12-05T10:00:00+00:00",
            "kind": backupset.INCREMENTAL if parent else backupset.FULL,
            "parent": {"id": parent, "manifest_sha256": parent_digest} if parent else None,
            "snapshot": f"backup-{bid}", "source": {"fsid": "f", "pool": "rbd", "namespace": ""},
            "consistency": {"level": backupset.CRASH, "why": ""},
            "definition": {"xml": "<domain/>", "base": None, "sig": None}, "metadata": {},
            "disks": [{**d, "size": 1 << 20, "snap_id": 4, "file": d["image"] + ".rbdiff", "bytes": 0,
                       "sha256": SHA, "data_bytes": 0} for d in disks], "signature": "s"}


def test_a_manifest_round_trips():
    m = manifest("20261205T100000Z")
    assert backupset.decode(backupset.encode(m)) == m


@pytest.mark.parametrize("change, why", [
    ({"vm": "../etc"}, "VM name"),
    ({"id": "../../x"}, "id"),
    ({"format": "other"}, "format"),
    ({"disks": [{"image": "../../../etc/passwd", "role": "system"}]}, "not system_vm1"),
    ({"disks": [{"image": "system_vm1", "role": "system", "file": "/etc/shadow"}]}, "file"),
    ({"kind": "incremental"}, "parent"),
    ({"snapshot": "user-snap"}, "snapshot"),
    ({"metadata": {"k": 1}}, "metadata"),
])
def test_a_manifest_with_hostile_fields_is_refused(change, why):
    m = manifest("20261205T100000Z")
    for k, v in change.items():
        if k == "disks":
            v = [{**m["disks"][0], **d} for d in v]
        m[k] = v
    with pytest.raises(backupset.Invalid, match=why):
        backupset.decode(json.dumps(m).encode())


def entries(*ms, problems=None):
    out = {}
    for m in ms:
        out[m["id"]] = {"manifest": m, "digest": backupset.digest(backupset.encode(m)), "problem": None,
                        "vm": m["vm"], "id": m["id"]}
    for bid, p in (problems or {}).items():
        out[bid]["problem"] = p
    return out


def chain3():
    f = manifest("20261201T000000Z")
    i1 = manifest("20261202T000000Z", parent=f["id"], parent_digest=backupset.digest(backupset.encode(f)))
    i2 = manifest("20261203T000000Z", parent=i1["id"], parent_digest=backupset.digest(backupset.encode(i1)))
    return f, i1, i2


def test_a_chain_is_whole_only_when_every_link_is_the_one_its_child_was_made_from():
    f, i1, i2 = chain3()
    assert backupset.chain_problem(entries(f, i1, i2), i2["id"]) is None
    assert [m["id"] for m in backupset.chain_of(entries(f, i1, i2), i2["id"])] == [f["id"], i1["id"], i2["id"]]
    assert "missing" in backupset.chain_problem(entries(f, i2), i2["id"])
    assert "damaged" in backupset.chain_problem(entries(f, i1, i2, problems={f["id"]: "damaged"}), i2["id"])
    other = manifest(i1["id"], vm="vm1", uuid="u2", parent=f["id"],
                     parent_digest=backupset.digest(backupset.encode(f)))
    assert "not the one it was made from" in backupset.chain_problem(entries(f, other, i2), i2["id"])


def test_the_restore_point_is_an_id_the_newest_or_the_newest_before_a_time():
    by_id = entries(*chain3())
    assert backupset.pick(by_id, "vm1") == "20261203T000000Z"
    assert backupset.pick(by_id, "vm1", "20261202T000000Z") == "20261202T000000Z"
    with pytest.raises(RbdvmError, match="no backup"):
        backupset.pick(by_id, "vm2")
    for m in by_id.values():
        m["manifest"]["time"] = datetime.strptime(m["id"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).isoformat()
    assert backupset.pick(by_id, "vm1", datetime(2026, 12, 2, 12, tzinfo=timezone.utc)) == "20261202T000000Z"
    with pytest.raises(RbdvmError, match="at or before"):
        backupset.pick(by_id, "vm1", datetime(2026, 11, 1, tzinfo=timezone.utc))


def test_prune_keeps_what_the_kept_points_need_and_removes_newest_first():
    f, i1, i2 = chain3()
    f2 = manifest("20261204T000000Z")
    by_id = entries(f, i1, i2, f2)
    every = set(by_id)
    assert backupset.prune_plan(by_id, 1, every) == {"keep": [f2["id"]], "left": [],
                                                     "remove": [i2["id"], i1["id"], f["id"]]}
    assert backupset.prune_plan(by_id, 2, every)["remove"] == []
    broken = entries(i1, i2, f2)   # the full one is gone: i1 and i2 are left for a person
    assert backupset.prune_plan(broken, 1, set(broken))["remove"] == []
    # only what was verified counts: the unsigned newest is neither kept nor a reason to remove
    assert backupset.prune_plan(by_id, 1, every - {f2["id"]}) == {"keep": [f["id"], i1["id"], i2["id"]],
                                                                  "left": [f2["id"]], "remove": []}


def test_ids_sort_by_time_then_counter_and_never_repeat():
    now = datetime(2026, 12, 5, 10, 0, 0, tzinfo=timezone.utc)
    assert backupset.new_id(now, []) == "20261205T100000Z"
    assert backupset.new_id(now, ["20261205T100000Z", "20261205T100000Z-2"]) == "20261205T100000Z-3"
    assert backupset.sort_key("20261205T100000Z-10") > backupset.sort_key("20261205T100000Z-9")


def test_the_directory_lists_only_committed_backups_and_leaves_foreign_files(tmp_path):
    store = Store(str(tmp_path))
    partial = store.begin("vm1", "20261205T100000Z")
    with partial.sink("system_vm1") as s:
        s.write(stream([("w", 0, b"x")]))
    (tmp_path / "notes.txt").write_text("another tool's")
    (tmp_path / "vm1" / "20261205T090000Z").mkdir()        # a directory that only looks like one
    assert list(store.backups("vm1")) == ["20261205T090000Z"]
    assert "unreadable" in store.backups("vm1")["20261205T090000Z"]["problem"]
    assert store.partials("vm1") == ["20261205T100000Z"]
    m = manifest("20261205T100000Z", parent=None)
    m["disks"][0].update(bytes=s.bytes, sha256=s.sha256)
    partial.commit(backupset.encode(m))
    entry = store.backups("vm1")["20261205T100000Z"]
    assert entry["problem"] is None and store.file_problem(entry, rehash=True) is None
    with open(tmp_path / "vm1" / "20261205T100000Z" / "system_vm1.rbdiff", "r+b") as f:
        f.seek(20)
        f.write(b"Z")
    assert "SHA-256" in store.file_problem(entry, rehash=True)
    assert store.vms() == ["vm1"]
    assert (tmp_path / "notes.txt").exists()


def test_the_lab_policy_widens_the_builtin_firmware_directories_never_narrows_them():
    import tomllib

    from labkit import configs
    from rbdvm.helpers.core import devpolicy

    lab = tomllib.loads(configs.device_policy())
    assert set(devpolicy.Policy().firmware_dirs) < set(lab["firmware_dirs"])
