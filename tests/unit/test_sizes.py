"""Disk size parsing (pure)."""

import pytest

from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.sizes import parse_size

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,value", [("20G", 20 << 30), ("512M", 512 << 20), ("1.5T", 3 << 39),
                                        ("4GiB", 4 << 30), ("1048576", 1 << 20), ("10k", 10240),
                                        ("1000", 1024)])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "-1G", "0", "1X", "1 G B", "1e9"])
def test_not_sizes(text):
    with pytest.raises(UsageError):
        parse_size(text)
