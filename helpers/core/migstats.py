"""A live migration's completed job, as libvirt reports it on the destination (its
completed job statistics: `virsh domjobinfo --completed`): the one reading of them, for
`rbdvm migrate` and the agent's log."""


def summary(stats) -> dict | None:
    """{downtime_ms, total_ms, transferred_bytes, iterations} of a completed migration's
    statistics; None if they are not a migration's (no downtime measured)."""
    if not stats or "downtime" not in stats:
        return None
    return {"downtime_ms": int(stats["downtime"]),
            "total_ms": int(stats.get("time_elapsed", 0)),
            "transferred_bytes": int(stats.get("data_processed", stats.get("memory_processed", 0))),
            "iterations": int(stats.get("memory_iteration", 0))}


def describe(s: dict) -> str:
    return (f"guest downtime {s['downtime_ms']} ms, total {s['total_ms']} ms, "
            f"{s['transferred_bytes'] / (1 << 20):.1f} MiB sent in {s['iterations']} pass(es)")
