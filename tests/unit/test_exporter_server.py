"""The exporter's front end (pure, on loopback): a scrape gets the latest collection at once
with Prometheus' content type, other paths are not found, and the textfile is replaced whole."""

import http.server
import threading
import urllib.error
import urllib.request

import pytest

from rbdvm.cli import exporter
from rbdvm.helpers.core import promtext

pytestmark = pytest.mark.unit


def test_a_scrape_gets_the_latest_collection():
    latest = exporter._Latest()
    latest.set("rbdvm_up 1\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), exporter._handler(latest))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            assert r.read() == b"rbdvm_up 1\n" and r.headers["Content-Type"] == promtext.CONTENT_TYPE
        latest.set("rbdvm_up 0\n")
        assert urllib.request.urlopen(base + "/metrics", timeout=5).read() == b"rbdvm_up 0\n"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/etc/passwd", timeout=5)
    finally:
        server.shutdown()


def test_the_textfile_is_replaced_whole(tmp_path):
    exporter._write_textfile(str(tmp_path), "a 1\n")
    exporter._write_textfile(str(tmp_path), "a 2\n")
    assert [p.name for p in tmp_path.iterdir()] == [exporter.TEXTFILE]
    assert (tmp_path / exporter.TEXTFILE).read_text() == "a 2\n"


@pytest.mark.parametrize("listen,expected", [("127.0.0.1:9775", ("127.0.0.1", 9775)), ("[::]:9775", ("::", 9775)),
                                             (":9775", ("0.0.0.0", 9775))])
def test_listen_addresses(listen, expected):
    assert exporter._address(listen) == expected


@pytest.mark.parametrize("listen", ["9775", "host:", "host:99999", "host:http"])
def test_a_wrong_listen_address_is_refused(listen):
    from rbdvm.helpers.core.errors import UsageError

    with pytest.raises(UsageError):
        exporter._address(listen)
