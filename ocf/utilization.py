"""Resource utilization (cpu, hv_memory) from the domain definition, written to the CIB only
when it changed: the last values written are kept in /run, so no monitor ever forks."""

import os
import subprocess
import xml.etree.ElementTree as ET

from . import log

CACHE_DIR = "/run/resource-agents"
_UNITS = {"b": 1, "bytes": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1000, "m": 1 << 20, "mib": 1 << 20,
          "mb": 10 ** 6, "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9, "t": 1 << 40, "tib": 1 << 40}


def values(xml: str) -> dict:
    root = ET.fromstring(xml)
    out = {}
    vcpu = root.findtext("vcpu")
    if vcpu and vcpu.strip().isdigit():
        out["cpu"] = int(vcpu.strip())
    mem = root.find("memory")
    if mem is not None and (mem.text or "").strip().isdigit():
        unit = _UNITS.get((mem.get("unit") or "KiB").lower(), 1 << 10)
        out["hv_memory"] = int(mem.text.strip()) * unit >> 20
    return out


def update(rsc: str, xml: str, cpu: bool, hv_memory: bool) -> None:
    wanted = {k: v for k, v in values(xml).items() if (k == "cpu" and cpu) or (k == "hv_memory" and hv_memory)}
    cache = os.path.join(CACHE_DIR, f"rbdvm-{rsc}.utilization")
    text = " ".join(f"{k}={v}" for k, v in sorted(wanted.items()))
    try:
        with open(cache) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    for key, value in wanted.items():
        res = subprocess.run(["crm_resource", "--resource", rsc, "--utilization", "--set-parameter",
                              key, "--parameter-value", str(value)], capture_output=True, text=True)
        if res.returncode != 0:
            log.warn(f"could not set utilization {key}={value}: {res.stderr.strip()}")
            return
    try:
        os.makedirs(CACHE_DIR, exist_ok=True)
        with open(cache, "w") as f:
            f.write(text)
    except OSError:
        pass
    log.info(f"utilization of {rsc} set: {text}")
