"""Peak private memory of a child process: the bound we hold workers to, in benches and tests.

RSS counts file-backed pages (the torch and OpenVINO libraries), which change with the machine, the venv and the
page cache; private anonymous memory (``RssAnon``) is what a worker really costs. Linux keeps no high-water mark
of it, so the parent samples ``/proc/PID/status`` while the child runs. A sampling interval of a few milliseconds
catches every plateau a stylize pass holds (each lasts tens of milliseconds or more).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

SAMPLE_INTERVAL_S = 0.002
TORCH_ONLY = "import torch"


@dataclass(frozen=True)
class MemoryReport:
    """What a child printed and the most private memory it held."""

    stdout: str
    peak_private_mb: float


def _rss_anon_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_python(script: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> MemoryReport:
    """Run ``python -c script args...`` in a fresh interpreter; its stdout and peak ``RssAnon`` in MB.

    Raises ``subprocess.CalledProcessError`` (with the child's stderr) when it fails.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak = 0.0
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        peak = max(peak, _rss_anon_mb(child.pid) or 0.0)
        if time.monotonic() > deadline:
            child.kill()
            break
        time.sleep(SAMPLE_INTERVAL_S)
    stdout, stderr = child.communicate()
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args, stdout, stderr)
    return MemoryReport(stdout, peak)


def bare_torch_mb() -> float:
    """Peak private memory of a process that only imports torch: the floor every worker stands on."""
    return run_python(TORCH_ONLY).peak_private_mb


def peak_above_torch_mb(script: str, *args: str, timeout: float = 600) -> tuple[MemoryReport, float]:
    """``run_python`` and the bare-torch floor measured in the same run, for a bound that holds on any venv."""
    return run_python(script, *args, timeout=timeout), bare_torch_mb()
