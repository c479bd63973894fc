"""Peak private memory of a child process: the bound we hold workers to, in benches and tests.

    .venv/bin/python bench/memory.py [--runs 3]   # a fresh worker's peak per stage, 1024 px face photo and 24 MP

RSS counts file-backed pages (the torch and OpenVINO libraries), which change with the machine, the venv and the
page cache; private anonymous memory (``RssAnon``) is what a worker really costs. Linux keeps no high-water mark
of it, so the parent samples ``/proc/PID/status`` while the child runs. A sampling interval of a few milliseconds
catches every plateau a stylize pass holds (each lasts tens of milliseconds or more).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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


STAGE_MARK = "STAGE "
# Runs in the child: the engine's default settings; each stage announces itself on stderr before it starts.
STAGED_SCRIPT = """
import sys
def stage(name, fraction=0.0):
    print("STAGE " + name + (" faces" if name == "stylizing" and fraction > 0 else ""), file=sys.stderr, flush=True)
stage("import animegan.engine")
from pathlib import Path
from animegan.engine import Engine
engine = Engine()
stage("load the default style")
engine.load()
engine.stylize_bytes(Path(sys.argv[1]).read_bytes(), on_stage=stage)
stage("done")
"""


@dataclass(frozen=True)
class StagedReport:
    """Peak private memory (MB) while each stage ran, in the order the stages began."""

    peaks: dict[str, float] = field(default_factory=dict)

    @property
    def peak_private_mb(self) -> float:
        return max(self.peaks.values(), default=0.0)


def run_python_by_stage(script: str, *args: str, timeout: float = 600) -> StagedReport:
    """Like ``run_python``, but the peak is kept per stage: the child prints ``STAGE <name>`` lines on stderr."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    current = ["start"]
    errors: list[str] = []

    def follow_stages() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if line.startswith(STAGE_MARK):
                current[0] = line[len(STAGE_MARK) :].strip()
            else:
                errors.append(line)

    reader = threading.Thread(target=follow_stages, daemon=True)
    reader.start()
    peaks: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        sample = _rss_anon_mb(child.pid) or 0.0
        peaks[current[0]] = max(peaks.get(current[0], 0.0), sample)
        time.sleep(SAMPLE_INTERVAL_S)
    child.kill()
    child.wait()
    reader.join(timeout=5)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args, "", "".join(errors))
    return StagedReport(peaks)


def face_photo(path: Path, side: int = 1024) -> Path:
    """The bench's one-face photo (a calibration portrait) at ``side`` px, saved as JPEG to ``path``."""
    from bench.photos import calibration_jpeg

    path.write_bytes(calibration_jpeg("portrait_man_talking.jpg", side))
    return path


def big_photo(path: Path) -> Path:
    """A 24 MP (6000 x 4000) photo: a calibration landscape brought up, saved as JPEG to ``path``."""
    from PIL import Image

    from animegan.quantize import default_calibration_dir

    with Image.open(default_calibration_dir() / "landscape_mountains_path.jpg") as photo:
        photo.convert("RGB").resize((6000, 4000), Image.Resampling.BICUBIC).save(path, quality=85)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per photo, for the spread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        photos = {
            "1024 px one-face photo": face_photo(Path(scratch) / "face.jpg"),
            "24 MP photo (default size 1024)": big_photo(Path(scratch) / "big.jpg"),
        }
        floors = [bare_torch_mb() for _ in range(args.runs)]
        floor = min(floors)
        print(f"bare `import torch`: {floor:.0f} MB private (runs: {', '.join(f'{f:.0f}' for f in floors)})")
        for label, path in photos.items():
            reports = [run_python_by_stage(STAGED_SCRIPT, str(path)) for _ in range(args.runs)]
            print(f"\n{label}: peak above torch per stage (MB), {args.runs} fresh processes", flush=True)
            for stage in reports[0].peaks:
                values = [report.peaks.get(stage, 0.0) - floor for report in reports]
                print(f"  {stage:<28} " + "  ".join(f"{value:6.0f}" for value in values))
            peaks = [report.peak_private_mb - floor for report in reports]
            print(f"  {'PEAK':<28} " + "  ".join(f"{value:6.0f}" for value in peaks))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
