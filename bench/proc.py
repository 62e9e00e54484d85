"""Run one measured subprocess: wall time, peak RSS of its process tree, timeout, RSS guard.

Peak RSS is the larger of (a) the largest ``VmHWM`` (the kernel's own high-water mark of one
process) and (b) the largest sum of ``VmRSS`` over the child and all its descendants, both
polled from ``/proc`` every ``POLL_S`` seconds; a peak in the last ``POLL_S`` before exit can be
missed. With ``skip_root`` (the child is a wrapper such as ``py-spy record -- python ...``) the
root process is left out. No psutil: plain ``/proc``.

Not ``ru_maxrss`` (``getrusage(RUSAGE_CHILDREN)`` or ``os.wait4``): Python starts children with
vfork + exec, and the kernel carries the *parent's* high-water mark into the child's
``ru_maxrss`` at exec, so a harness that hosts a 200k-row sandbox would report its own size for
a child that used 30 MB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.1
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Measured:
    cmd: list[str]
    returncode: int | None
    wall_s: float
    peak_rss_mb: float
    timed_out: bool
    rss_guard_hit: bool
    stdout: str
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.rss_guard_hit

    def failure(self) -> str | None:
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f}s"
        if self.rss_guard_hit:
            return f"killed by the RSS guard at {self.peak_rss_mb:.0f} MB"
        if self.returncode != 0:
            last = self.stderr_tail.strip().splitlines()[-3:]
            return f"exit {self.returncode}: {' | '.join(last)}"
        return None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces/parens, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _mem_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in kB; zeros once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return rss, hwm


def tree_memory_mb(root: int, skip_root: bool = False) -> tuple[float, float]:
    """(sum of VmRSS over the tree, largest VmHWM of one process in it), in MB."""
    children = _children_map()
    total = peak = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        if not (skip_root and pid == root):
            rss, hwm = _mem_kb(pid)
            total += rss
            peak = max(peak, hwm)
        stack.extend(children.get(pid, ()))
    return total / 1024, peak / 1024


def measure(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float,
    rss_guard_mb: float | None = None,
    skip_root: bool = False,
    log_name: str = "run",
) -> Measured:
    """Run ``cmd`` to completion (or kill its process group on timeout / RSS guard)."""
    cwd.mkdir(parents=True, exist_ok=True)
    out_path, err_path = cwd / f"{log_name}.stdout", cwd / f"{log_name}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a kill takes the whole tree
        )
        try:
            status, peak, timed_out, guard = _watch(
                proc, started, timeout_s, rss_guard_mb, skip_root
            )
        except BaseException:  # Ctrl-C / SIGTERM of the harness: take the child down too
            _kill_group(proc.pid, quiet=True)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            raise
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status) if status is not None else None
    # waitpid reaped it; make sure no stray member of its group outlives the measurement
    _kill_group(proc.pid, quiet=True)
    stderr = err_path.read_bytes()[-4000:].decode(errors="replace")
    return Measured(
        cmd=list(cmd),
        returncode=proc.returncode,
        wall_s=wall,
        peak_rss_mb=peak,
        timed_out=timed_out,
        rss_guard_hit=guard,
        stdout=out_path.read_text(errors="replace"),
        stderr_tail=stderr,
    )


def _watch(
    proc: subprocess.Popen,
    started: float,
    timeout_s: float,
    rss_guard_mb: float | None,
    skip_root: bool,
) -> tuple[int, float, bool, bool]:
    """Poll until the child exits or must be killed: (status, peak MB, timed out, RSS guard
    hit)."""
    peak = 0.0
    timed_out = guard = False
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            return status, peak, timed_out, guard
        total, hwm = tree_memory_mb(proc.pid, skip_root)
        peak = max(peak, total, hwm)
        elapsed = time.perf_counter() - started
        if elapsed > timeout_s:
            timed_out = True
        elif rss_guard_mb is not None and peak > rss_guard_mb:
            guard = True
        if timed_out or guard:
            _kill_group(proc.pid)
            _, status = os.waitpid(proc.pid, 0)
            return status, peak, timed_out, guard
        time.sleep(POLL_S)


def _kill_group(pgid: int, quiet: bool = False) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if sig == signal.SIGTERM and not quiet:
            time.sleep(2)
