"""Prometheus' text exposition format (version 0.0.4), the one writer of it in rbdvm: metric
families declared with their type and help, samples with escaped label values. Pure."""

import math
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    name: str
    kind: str                 # gauge or counter
    help: str
    samples: list = field(default_factory=list)     # [(labels dict, value)]

    def __post_init__(self):
        if not _NAME.fullmatch(self.name) or self.kind not in ("gauge", "counter"):
            raise ValueError(f"not a metric family: {self.name} {self.kind}")
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {self.name}")

    def add(self, value, **labels) -> None:
        for k in labels:
            if not _LABEL.fullmatch(k) or k.startswith("__"):
                raise ValueError(f"not a label name: {k}")
        self.samples.append((labels, float(value)))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def render(families) -> str:
    """The exposition text of `families`: each with HELP and TYPE, once, in the order given."""
    out = []
    for f in families:
        out.append(f"# HELP {f.name} {f.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
        out.append(f"# TYPE {f.name} {f.kind}")
        for labels, value in f.samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"{f.name}{{{inner}}} {_number(value)}" if inner else f"{f.name} {_number(value)}")
    return "\n".join(out) + "\n"
