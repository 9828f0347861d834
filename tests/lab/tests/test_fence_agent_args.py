"""Pure logic: how the lab's fence agent reads its options (no lab; the agent is not run)."""

import importlib.machinery
import importlib.util
import io

import pytest

from labkit import layout as L

pytestmark = pytest.mark.unit


def _agent():
    path = str(L.LAB_SRC / "sbin" / L.FENCE_AGENT)
    loader = importlib.machinery.SourceFileLoader("fence_agent", path)
    spec = importlib.util.spec_from_loader("fence_agent", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_stdin_options_from_pacemaker():
    opts = _agent().parse([], io.StringIO("action=reboot\nplug=node2\nstate_dir=/s\n# c\n"))
    assert opts == {"action": "reboot", "plug": "node2", "state_dir": "/s"}


def test_command_line_options():
    assert _agent().parse(["-o", "off", "-n", "node1", "--state-dir", "/s"], None) == \
        {"action": "off", "plug": "node1", "state_dir": "/s"}
    assert _agent().parse(["--action=status", "--plug=node2"], None) == {"action": "status", "plug": "node2"}


def test_metadata_declares_state_dir():
    assert 'name="state_dir"' in _agent().METADATA
