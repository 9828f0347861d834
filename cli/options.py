"""Options every storage command shares, and how results are printed."""

import contextlib
import functools
import json
import sys
import unicodedata
from typing import Any

import click

from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core import defaults, vmschema
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.ops.env import Env

_asked = {"json": False}


def _remember_json(ctx, param, value):
    """--json also shapes an error (main renders it as {"error": {...}}): remembered as soon
    as it is parsed (eager), before another option can fail."""
    if value:
        _asked["json"] = True
    return value


def ask_json() -> None:
    _asked["json"] = True


def json_asked() -> bool:
    return _asked["json"]


json_option = click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_remember_json,
                           help="Print the result as JSON; an error as {\"error\": {code, message, details...}} "
                                "on stdout, with the same non-zero exit code.")


def ceph_command(func):
    """Adds --pool/--namespace/--conf/--id/--json; passes `target` and `as_json`."""
    @json_option
    @click.option("--id", "client_id", metavar="USER",
                  help=f"Ceph client name without 'client.' [default: {defaults.CEPH_ID}, or RBDVM_CEPH_ID]")
    @click.option("--conf", metavar="FILE",
                  help=f"ceph.conf of the cluster [default: {defaults.CEPH_CONF}, or RBDVM_CEPH_CONF]")
    @click.option("--namespace", "-N", metavar="NS",
                  help="RBD namespace (isolation per cluster or tenant) [default: none, or RBDVM_NAMESPACE]")
    @click.option("--pool", "-p", metavar="POOL", help=f"RBD pool [default: {defaults.POOL}, or RBDVM_POOL]")
    @functools.wraps(func)
    def wrapper(*args, pool, namespace, conf, client_id, **kwargs):
        target = ceph_target_from_env(pool=pool, namespace=namespace, conf=conf, client_id=client_id)
        return func(*args, target=target, **kwargs)
    return wrapper


def emit(as_json: bool, result, text) -> None:
    """Print `result` as JSON, or `text(result)` (a string or lines) for people."""
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    out = text(result) if callable(text) else text
    if isinstance(out, (list, tuple)):
        out = "\n".join(out)
    if out:
        click.echo(out)


def escaped(text, lines: bool = False) -> str:
    """A stored string as shown to someone deciding on it: every control, format or
    unassigned character (a terminal's escape codes, a right-to-left override, a carriage
    return that would overwrite a line) and the backslash written as an escape, so nothing
    stored can hide or fake a line. `lines`: newlines and tabs are kept (an XML document)."""
    out = []
    for c in str(text):
        if c == "\\":
            out.append("\\\\")
        elif lines and c in "\n\t":
            out.append(c)
        elif unicodedata.category(c)[0] in "CZ" and c != " ":
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                       else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return "".join(out)


def table(rows, columns) -> list:
    """Left-aligned columns: rows are dicts, columns (header, key or callable)."""
    cells = [[h for h, _ in columns]]
    for r in rows:
        cells.append([str(k(r) if callable(k) else (r.get(k) if r.get(k) is not None else "-"))
                      for _, k in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Progress:
    """One progress bar per disk on stderr (stdout stays clean for --json)."""

    def __init__(self, enabled: bool, verb: str = "importing"):
        self.enabled = enabled and sys.stderr.isatty()
        self.verb = verb
        self.bar: Any = None
        self.disk: str | None = None
        self.done = 0

    def __call__(self, disk: str, fraction: float) -> None:
        if not self.enabled:
            return
        if disk != self.disk:
            self.close()
            self.disk, self.done = disk, 0
            self.bar = click.progressbar(length=1000, label=f"{self.verb} {disk}".strip(), file=sys.stderr)
            self.bar.__enter__()
        step = int(fraction * 1000) - self.done
        if step > 0:
            self.bar.update(step)
            self.done += step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def parse_time(value, flag: str):
    """An option's ISO 8601 time (UTC if it has no offset), None if not given."""
    from datetime import datetime

    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date",
                         "use ISO 8601: 2026-11-21 or 2026-11-21T13:00:00+01:00 (UTC if no offset)") from None


def parse_pairs(pairs, what: str) -> dict:
    """['k=v', ...] -> {k: v}, for --metadata and the map settings' options."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


@contextlib.contextmanager
def ceph_env(target):
    """The operations' environment (helpers/ops/env.py) with a Ceph session opened for it."""
    with Session(target) as s:
        yield Env(session=s)


def cluster_env() -> Env:
    """The operations' environment for a command that needs no Ceph (start, stop, node)."""
    return Env()


def in_session(target, op, *args, **kw):
    """One operation, in a Ceph session opened for it."""
    with ceph_env(target) as env:
        return op(env, *args, **kw)


def vm_command(*arguments: str, under=None, name: str | None = None):
    """A command on VM NAME (then `arguments`), with the Ceph options and --json: the
    decorators every such command would otherwise repeat."""
    def wrap(fn):
        fn = ceph_command(fn)
        for arg in reversed(("name", *arguments)):
            fn = click.argument(arg)(fn)
        return (under.command if under is not None else click.command)(name)(fn)
    return wrap


def settings_options(func=None, *, only=None):
    """One CLI option per VM setting, derived from rbdvm.helpers.core.vmschema.SETTINGS
    (`only`: those settings' names)."""
    if func is None:
        return functools.partial(settings_options, only=only)
    for s in reversed(vmschema.SETTINGS):
        if only is not None and s.name not in only:
            continue
        flag = "--" + s.name.replace("_", "-")
        if s.kind == "bool":
            opt = click.option(f"{flag}/--no-{flag[2:]}", s.name, default=None, help=s.help)
        elif s.kind == "map":
            opt = click.option(flag, s.name, multiple=True, metavar="KEY=VALUE", help=s.help)
        elif s.kind == "choice":
            opt = click.option(flag, s.name, type=click.Choice(s.choices), help=s.help)
        else:
            opt = click.option(flag, s.name, type=int if s.kind == "int" else str, help=s.help)
        func = opt(func)
    return func


def settings_values(kwargs, only=None) -> dict:
    out = {}
    for s in vmschema.SETTINGS:
        if only is not None and s.name not in only:
            continue
        value = kwargs.pop(s.name)
        out[s.name] = parse_pairs(value, f"--{s.name.replace('_', '-')}") if s.kind == "map" else value
    return out


def strict_option(what: str):
    """--strict of a command that changes where VMs may run (`what`: the VM's state the
    check counts, as the change leaves it)."""
    return click.option("--strict", is_flag=True, help=(
        f"Refuse (exit 4, N_PLUS_ONE) before changing anything if, with {what}, the loss of any one node "
        "would leave VMs that could not restart anywhere (Pacemaker's scheduler over a copy of the CIB). "
        "Without it the same finding is a warning after the change."))
