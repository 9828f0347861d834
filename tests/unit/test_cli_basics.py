"""The rbdvm command's surface: version, help, exit codes (no lab)."""

import subprocess
import sys

import pytest

from rbdvm.helpers.core.errors import EXIT_CODES, NotFound, RbdvmError
from rbdvm.helpers.core.settings import ceph_target_from_env

pytestmark = pytest.mark.unit

RBDVM = [sys.executable, "-m", "rbdvm.cli.main"]


def test_version():
    res = subprocess.run(RBDVM + ["--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("rbdvm, version ")


def test_help_documents_exit_codes_and_ceph_defaults():
    res = subprocess.run(RBDVM + ["--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for code, meaning in EXIT_CODES.items():
        assert f"{code}  {meaning}" in res.stdout
    assert "/etc/ceph/ceph.client.rbdvm.keyring" in res.stdout


def test_every_command_is_loaded_by_the_name_it_is_listed_under_and_only_when_it_runs():
    """The top-level group imports a command's module only for that command (each `rbdvm`
    call would otherwise import every command's dependencies)."""
    code = ("import sys, click\n"
            "from rbdvm.cli.main import cli, COMMANDS\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('rbdvm.cli.') and m[10:] in "
            "{mod for mod, _ in COMMANDS.values()})\n"
            "ctx = click.Context(cli)\n"
            "names = {n: cli.get_command(ctx, n).name for n in cli.list_commands(ctx)}\n"
            "print(loaded, names == {n: n for n in names})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[] True", res.stdout


def test_unknown_command_is_a_usage_error_without_traceback():
    res = subprocess.run(RBDVM + ["frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2 and "No such command" in res.stderr and "Traceback" not in res.stderr


def test_error_message_says_what_why_and_what_to_do():
    err = NotFound("VM does not exist", "no RBD group vm1 in rbd", "Check the name with `rbdvm list`")
    assert err.message == "VM does not exist: no RBD group vm1 in rbd. Check the name with `rbdvm list`"
    assert isinstance(err, RbdvmError) and err.exit_code == 3


def test_ceph_target_defaults_env_then_flags():
    assert ceph_target_from_env({}).client_id == "rbdvm"
    env = {"RBDVM_CEPH_ID": "other", "RBDVM_POOL": "vms"}
    t = ceph_target_from_env(env, pool="override", namespace=None)
    assert (t.client_id, t.pool, t.namespace) == ("other", "override", "")


def test_the_trust_review_shows_every_stored_string_escaped():
    """Terminal escape codes in a stored setting or definition could clear the screen or
    overwrite lines the person deciding whether to sign should see."""
    from rbdvm.cli import trust

    hostile = "\x1b[2J\x1b[1A\r\u202e"
    review = {"name": "vm1", "snapshot": None, "xml": f"<domain>\n  <name>vm1{hostile}</name>\n</domain>\n",
              "definition": "unsigned", "settings_state": "unsigned", "problems": [f"bad {hostile}"],
              "settings": {"pinned_host": f"node1{hostile}", "pacemaker_meta": {"k": hostile}}}
    shown = "\n".join(trust._show(review))
    assert not any(c in shown for c in "\x1b\r\u202e"), shown
    assert "\\x1b[2J" in shown and "\\u202e" in shown and "<name>vm1" in shown
    assert "\n  <name>" in shown        # the definition's own lines stay lines
