"""Fixtures the unit tests of the operations share (tests/unit/scripted.py holds the
scripted environment itself). A module that needs another `env` (one with a VM made)
defines its own, which takes precedence."""

import pytest
from scripted import disk_file, scripted_env


@pytest.fixture
def env():
    """A scripted environment with nothing in it."""
    return scripted_env()


@pytest.fixture
def image(tmp_path):
    """A 1 MiB raw disk file to import."""
    return disk_file(tmp_path)


@pytest.fixture
def vm(env, image):
    """VM vm1, made by create, its system disk's first 4 KiB all b"A" (the backup tests')."""
    from scripted import BASE_XML

    from rbdvm.helpers.ops import creation

    creation.create(env, "vm1", image, BASE_XML)
    env.session.store.images["system_vm1"].content = b"A" * 4096
    return "vm1"
