"""Unit tests of the qcow2 header inspection (pure logic: the files are made by the real
qemu-img and then patched byte by byte; nothing runs Ceph)."""

import struct
import subprocess

import pytest

from rbdvm.helpers.ceph import diskimage
from rbdvm.helpers.core.errors import UsageError

pytestmark = [pytest.mark.unit, pytest.mark.requires("qemu-img")]
MiB = 1 << 20


def make(tmp_path, *opts, name="d.qcow2", size="4M"):
    path = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *opts, str(path), size], check=True)
    return path


def patch(path, offset, data: bytes):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def refused(path) -> str:
    with pytest.raises(UsageError) as exc:
        diskimage.inspect(str(path))
    return exc.value.message


@pytest.mark.parametrize("opts", [[], ["-o", "compat=0.10"], ["-o", "extended_l2=on"],
                                  ["-o", "compression_type=zstd"], ["-o", "lazy_refcounts=on"]],
                         ids=["v3", "v2", "extended-l2", "zstd", "lazy-refcounts"])
def test_plain_qcow2_images_are_accepted_with_their_guest_size(tmp_path, opts):
    f = diskimage.inspect(str(make(tmp_path, *opts)))
    assert (f.format, f.virtual_size) == ("qcow2", 4 * MiB)


def test_persistent_bitmaps_are_accepted(tmp_path):
    path = make(tmp_path)
    subprocess.run(["qemu-img", "bitmap", "--add", str(path), "b0"], check=True)
    assert diskimage.inspect(str(path)).virtual_size == 4 * MiB


def test_an_external_data_file_is_refused(tmp_path):
    path = make(tmp_path, "-o", f"data_file={tmp_path / 'data.raw'},data_file_raw=on")
    assert "external data file" in refused(path)


def test_a_backing_file_is_refused(tmp_path):
    base = make(tmp_path, name="base.qcow2")
    path = make(tmp_path, "-F", "qcow2", "-b", str(base), name="top.qcow2")
    assert "backing file" in refused(path)


@pytest.mark.parametrize("method", [1, 2], ids=["aes", "luks"])
def test_an_encrypted_image_is_refused(tmp_path, method):
    # the header's crypt_method field, patched: qemu-img's own LUKS create times its key
    # derivation and fails on a loaded machine ("Unable to get accurate CPU usage")
    path = make(tmp_path)
    patch(path, 32, struct.pack(">I", method))
    assert "encrypted" in refused(path)


@pytest.mark.parametrize("bit, words", [(1, "corrupt"), (2, "external data file"), (9, "bit 9")])
def test_incompatible_feature_bits_outside_the_allow_list_are_refused(tmp_path, bit, words):
    path = make(tmp_path)
    patch(path, 72, struct.pack(">Q", 1 << bit))
    assert words in refused(path)


def test_an_unknown_header_extension_is_refused(tmp_path):
    path = make(tmp_path)
    header_length = struct.unpack(">I", path.read_bytes()[100:104])[0]
    patch(path, header_length, struct.pack(">II", 0x12345678, 0))
    assert "0x12345678" in refused(path)


def test_header_extensions_running_past_the_first_cluster_are_refused(tmp_path):
    path = make(tmp_path)
    header_length = struct.unpack(">I", path.read_bytes()[100:104])[0]
    patch(path, header_length, struct.pack(">II", 0x6803F857, 1 << 20))
    assert "past its first cluster" in refused(path)


def test_a_truncated_header_is_refused(tmp_path):
    path = tmp_path / "short.qcow2"
    path.write_bytes(make(tmp_path).read_bytes()[:64])
    assert "truncated" in refused(path)


def test_the_path_given_to_qemu_img_is_absolute(tmp_path, monkeypatch):
    """A relative `json:{...}` or `nbd:...` would be read by qemu-img as a protocol."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbd:host:10809").write_bytes(b"\0" * 4096)
    f = diskimage.inspect("nbd:host:10809")
    assert f.path == str(tmp_path / "nbd:host:10809") and f.path.startswith("/")
