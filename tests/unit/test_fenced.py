"""ocf/fenced.py's reading of Pacemaker's XML (pure: the documents are built here in the
shape crm_mon, stonith_admin and cibadmin print them)."""

import pytest

from rbdvm.helpers.core import xmlsafe
from rbdvm.helpers.pacemaker import crm_mon as mon_reading
from rbdvm.ocf import fenced

pytestmark = pytest.mark.unit


def doc(text):
    return xmlsafe.parse(text, "test")


def crm_mon(**nodes):
    """Node lines as crm_mon printed them on the lab: crashed and fenced (offline), lost in a
    partition with fencing disabled (expected_up true), ..."""
    return doc("<pacemaker-result><nodes>" + "".join(
        f'<node name="{n}" online="{"true" if s == "online" else "false"}" '
        f'unclean="{"true" if s == "unclean" else "false"}" '
        f'expected_up="{"false" if s == "offline" else "true"}"/>' for n, s in nodes.items())
        + "</nodes></pacemaker-result>")


def history(*events):
    return doc("<pacemaker-result><fence_history>" + "".join(
        f'<fence_event action="{a}" target="node2" delegate="node1" status="{st}" completed="{c}"/>'
        for a, st, c in events) + "</fence_history></pacemaker-result>")


def test_times_as_pacemaker_prints_them():
    assert fenced._epoch("2026-11-23 17:01:02Z") == 1795453262
    assert fenced._epoch("2026-11-23 18:01:02 +01:00") == 1795453262
    assert fenced._epoch("2026-11-23 17:01:02.123456Z") == 1795453262
    assert fenced._epoch("1795453262") == 1795453262
    assert fenced._epoch("yesterday") is None


def test_node_states():
    mon = crm_mon(node1="online", node2="unclean", node3="offline", node5="lost")
    assert [mon_reading.node_state(mon, n) for n in ("node1", "node2", "node3", "node4", "node5")] == \
        ["online", "unclean", "offline", "unknown", "lost"]


def test_only_a_latest_successful_off_or_reboot_counts():
    ok = history(("reboot", "success", "2026-11-23 17:01:02Z"))
    assert fenced.last_fence(ok, "node2")[:2] == ("reboot", 1795453262)
    assert fenced.last_fence(ok, "node3") is None
    failed_last = history(("reboot", "success", "2026-11-23 17:01:02Z"), ("off", "failed", "2026-11-23 17:05:00Z"))
    assert fenced.last_fence(failed_last, "node2") is None
    on = history(("on", "success", "2026-11-23 17:01:02Z"))
    assert fenced.last_fence(on, "node2") is None


def test_a_node_seen_after_its_fence_is_not_taken_for_fenced():
    status = doc('<status><node_state uname="node2"><lrm><lrm_resources><lrm_resource id="vm">'
                 '<lrm_rsc_op id="vm_monitor_0" last-rc-change="1795453300"/></lrm_resource></lrm_resources>'
                 '</lrm></node_state><node_state uname="node1"/></status>')
    assert fenced.seen_after(status, "node2", 1795453262)
    assert not fenced.seen_after(status, "node2", 1795453400)
    assert not fenced.seen_after(status, "node1", 0)
