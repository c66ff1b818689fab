"""Process-tree accounting with psutil: memory and CPU time of a server and all its children.

psutil is a bench-only dependency (`.venv/bin/pip install psutil`); run.py checks for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


def tree(root_pid: int) -> list[psutil.Process]:
    """The root process and every live descendant (uvicorn workers, spawn helpers, ...)."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    # user+system of the process itself; children_* only counts reaped children, which the
    # tree walk covers while they are alive.
    return t.user + t.system


@dataclass
class CpuSnapshot:
    per_pid: dict[int, float]
    at: float

    @property
    def total(self) -> float:
        return sum(self.per_pid.values())


def cpu_snapshot(procs: list[psutil.Process]) -> CpuSnapshot:
    per_pid: dict[int, float] = {}
    for p in procs:
        try:
            per_pid[p.pid] = _cpu(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return CpuSnapshot(per_pid, time.monotonic())


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU seconds spent between the snapshots (a process born in between counts in full; one
    that died in between loses what it spent after `before`, which the workers here never do)."""
    return sum(v - before.per_pid.get(pid, 0.0) for pid, v in after.per_pid.items())


def memory(procs: list[psutil.Process]) -> dict[str, int]:
    """Summed RSS (the target metric), plus PSS/USS where readable (RSS double-counts pages that
    forked/spawned processes share; PSS splits them fairly)."""
    rss = pss = uss = 0
    n = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            n += 1
            try:
                full = p.memory_full_info()
                pss += getattr(full, "pss", 0)
                uss += getattr(full, "uss", 0)
            except (psutil.AccessDenied, AttributeError):
                pass
        except psutil.NoSuchProcess:
            pass
    return {"rss_bytes": rss, "pss_bytes": pss, "uss_bytes": uss, "processes": n}


def system_busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores) since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + \
        getattr(t, "steal", 0)


def wait_machine_quiet(max_wait: float, *, threshold_cores: float = 0.3,
                       window: float = 3.0) -> tuple[float, float]:
    """Wait (at most max_wait s) until the whole machine uses less than `threshold_cores` cores
    over `window` s — other people's test runs skew every wall-clock number. Returns (seconds
    waited, cores busy in the last window)."""
    start = time.monotonic()
    busy = 0.0
    while True:
        a = system_busy_cpu()
        time.sleep(window)
        busy = (system_busy_cpu() - a) / window
        if busy < threshold_cores or time.monotonic() - start >= max_wait:
            return time.monotonic() - start, busy


def wait_idle(root_pid: int, *, threshold: float = 0.05, window: float = 1.0,
              max_wait: float = 60.0) -> float:
    """Wait until the server tree uses less than `threshold` of one core over `window` seconds
    (startup work, background DB updates). Returns the seconds waited; gives up after max_wait."""
    start = time.monotonic()
    while time.monotonic() - start < max_wait:
        procs = tree(root_pid)
        a = cpu_snapshot(procs)
        time.sleep(window)
        b = cpu_snapshot(procs)
        if cpu_delta(a, b) / (b.at - a.at) < threshold:
            break
    return time.monotonic() - start
