"""Clip benchmark: the issue's clip (4 s of 640x480 at 12 fps, with a tone; a pan over a portrait, so one face) on
the path a person's clip takes, the old way beside it, and the flicker, on this machine.

Three measurements, each in a fresh process with the default engine settings (precision auto, faces on, clips drawn
at 512 px), each after a warm-up (first-call costs are the warm-up's business, see ``Engine.load``):

- service: ``animebot``'s own path, a ``Service`` with its default pool (plan, chunks of frames on the workers, join
  with the sound), the clip submitted as a person's job;
- engine: ``Engine.stylize_clip_bytes`` in one process (the CLI and library path): frames in batches through the
  generators, decoding and encoding in their own threads;
- old: the same steps one frame at a time, decode, stylize and encode in a row (how clips were drawn before), in the
  same process as "engine" and alternating with it, so load on the machine hits both alike.

The flicker figures: on a still clip of the same portrait, the largest mean change between consecutive output frames
(of 255; the bound is 0.5), and on the pan, the output's frame-to-frame change over the input's. The faces: the mean
difference, inside the face's box, between the new and the old output of the same clip.

    .venv/bin/python bench/video.py               # 3 runs of each
    .venv/bin/python bench/video.py --runs 1      # quicker
    .venv/bin/python bench/video.py --avx2        # as an AVX2-only CPU: ONEDNN_MAX_CPU_ISA=AVX2 (animegan/cpu.py)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from animegan import cpu
from bench.memory import bare_torch_mb, run_python
from tests.support_clips import example, make_mp4, pan_frames, still_frames

SIZE = (640, 480)
FPS = 12
SECONDS = 4.0
STILL_FRAMES = 12
TARGET_SECONDS = 10.0  # the bound for the 4 s clip on a 2-core bf16 CPU
AVX2_TARGET_SECONDS = 20.0  # and on an AVX2-only one
STILL_MAX_MAD = 0.5

COMMON = r"""
import io, json, sys, time
import numpy as np
import av

def frames_of(data):
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]

def change(frames):
    return float(np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in zip(frames, frames[1:])]))

def still_mad(frames):
    return max(float(np.abs(a.astype(np.float32) - b).mean()) for a, b in zip(frames, frames[1:]))

def engine_options(argv):
    options = {}
    if argv[0] != "auto":
        options["precision"] = argv[0]
    return options
"""

# The engine's path and the old one, alternating; argv: precision, runs, pan, still.
ENGINE_CHILD = (
    COMMON
    + r"""
from functools import partial
import torch
from animegan.engine import Engine
from animegan.clip import read_frames
from animegan.clipstats import equalize_with_curves
from animegan.images import to_tensor, to_uint8
from animegan.mp4 import encode_segment
from animegan.pipeline import stylize_image
from animegan.video import CLIP_FACE_SIZES, face_from_record

precision, runs = sys.argv[1], int(sys.argv[2])
pan, still = (open(path, "rb").read() for path in sys.argv[3:5])
engine = Engine(**engine_options(sys.argv[1:]))
engine.load()

def old_way(clip):
    plan = engine.plan_clip(clip)
    style = engine.style(None)
    scene, face_model = engine.generator(style.scene_model), engine.face_generator(style)
    equalize = partial(equalize_with_curves, curves=torch.tensor(plan.curves), strength=1.0)
    def frames():
        for index, pixels in enumerate(read_frames(clip, plan)):
            faces = [face_from_record(record) for record in plan.faces[index]] if index < len(plan.faces) else []
            yield to_uint8(stylize_image(to_tensor(pixels), scene, faces=faces, face_model=face_model,
                                         finish=style.finish, scene_side=engine.scene_side, equalize=equalize,
                                         face_sizes=CLIP_FACE_SIZES))
    return engine.join_clip(clip, plan, [(0, encode_segment(frames(), plan, 0))]), plan

engine.stylize_clip_bytes(still)  # warm-up
seconds = {"engine": [], "old": []}
for _ in range(runs):
    began = time.perf_counter()
    new = engine.stylize_clip_bytes(pan)
    seconds["engine"].append(time.perf_counter() - began)
    began = time.perf_counter()
    old, plan = old_way(pan)
    seconds["old"].append(time.perf_counter() - began)
new_frames, old_frames = frames_of(new.data), frames_of(old.data)
source = list(read_frames(pan, plan))
face_differences = []
for index, (a, b) in enumerate(zip(new_frames, old_frames)):
    for record in plan.faces[index] if index < len(plan.faces) else []:
        x0, y0, x1, y1 = (max(0, int(round(value))) for value in record["box"])
        box = (slice(y0, y1), slice(x0, x1))
        face_differences.append(float(np.abs(a[box].astype(np.float32) - b[box]).mean()))
print(json.dumps({
    "seconds": seconds, "frames": plan.frames, "width": plan.width, "height": plan.height,
    "faces": new.faces, "path": engine.precision_report(),
    "flicker_vs_input": change(new_frames) / change(source),
    "old_flicker_vs_input": change(old_frames) / change(source),
    "still_mad": still_mad(frames_of(engine.stylize_clip_bytes(still).data)),
    "face_difference": max(face_differences, default=0.0), "frame_difference": float(np.mean(
        [np.abs(a.astype(np.float32) - b).mean() for a, b in zip(new_frames, old_frames)])),
}))
"""
)

# The clip as a person's job through a Service and its default pool; argv: precision, runs, pan, still.
SERVICE_CHILD = (
    COMMON
    + r"""
import asyncio
from bot.config import Settings
from bot.jobs import JobKind, JobRequest
from bot.service import Service

precision, runs = sys.argv[1], int(sys.argv[2])
pan, still = (open(path, "rb").read() for path in sys.argv[3:5])
if precision != "auto":
    import os; os.environ["ANIMEBOT_PRECISION"] = precision

async def main():
    seconds = []
    async with Service(Settings(_env_file=None)) as service:
        async def clip(data):
            handle = await service.enqueue(JobRequest("bench:1", data, "shinkai", kind=JobKind.CLIP))
            return await handle.result()
        await clip(still)  # warm-up
        for _ in range(runs):
            began = time.perf_counter()
            result = await clip(pan)
            seconds.append(time.perf_counter() - began)
        workers = service.clip_settings()
    print(json.dumps({"seconds": seconds, "out_bytes": len(result.image), "chunk_frames": workers.chunk_frames}))

asyncio.run(main())
"""
)


def spread(values: list[float]) -> str:
    """Median and range of some timings, in seconds."""
    return f"{statistics.median(values):5.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each path (default 3)")
    parser.add_argument("--precision", default="auto", help="the engine's precision (default auto)")
    parser.add_argument("--avx2", action="store_true", help=f"cap the ISA at AVX2 ({cpu.ISA_LIMIT_VARIABLE}=AVX2)")
    parser.add_argument("--skip-service", action="store_true", help="only the engine and the old way")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.avx2:
        env[cpu.ISA_LIMIT_VARIABLE] = "AVX2"
    print(f"CPU: {cpu.describe()}, {os.cpu_count()} cores; clip {SIZE[0]}x{SIZE[1]} at {FPS} fps, {SECONDS:g} s")
    with tempfile.TemporaryDirectory() as folder:
        frames = round(SECONDS * FPS)
        pan = Path(folder) / "pan.mp4"
        pan.write_bytes(make_mp4(pan_frames(example("astronaut.jpg"), SIZE, frames, step=2), frames, FPS, SECONDS))
        still = Path(folder) / "still.mp4"
        still.write_bytes(make_mp4(still_frames(example("astronaut.jpg"), SIZE), STILL_FRAMES, FPS))
        clip_args = (args.precision, str(args.runs), str(pan), str(still))
        env["ANIMEBOT_DATA_DIR"] = str(Path(folder) / "data")  # the service's stores, thrown away after
        engine_report = run_python(ENGINE_CHILD, *clip_args, timeout=3600, env=env)
        row = json.loads(engine_report.stdout.strip().splitlines()[-1])
        service = None
        if not args.skip_service:
            service_report = run_python(SERVICE_CHILD, *clip_args, timeout=3600, env=env)
            service = json.loads(service_report.stdout.strip().splitlines()[-1])
    torch_mb = bare_torch_mb()
    print(f"path: {row['path']}; drawn at {row['width']}x{row['height']}, {row['frames']} frames, {row['faces']} face")
    print(f"{'path':>8} {'time (median, range)':>22} {'x real time':>11}")
    timings = {"old": row["seconds"]["old"], "engine": row["seconds"]["engine"]}
    if service is not None:
        timings["service"] = service["seconds"]
    for name, values in timings.items():
        print(f"{name:>8} {spread(values):>22} {statistics.median(values) / SECONDS:>11.2f}")
    old = statistics.median(timings["old"])
    gains = ", ".join(f"{name} {old / statistics.median(timings[name]):.2f}x" for name in timings if name != "old")
    print(f"speed-up over the old way: {gains}")
    print(
        f"flicker: still clip {row['still_mad']:.2f}/255 between frames (bound {STILL_MAX_MAD}); pan's change over "
        f"the input's {row['flicker_vs_input']:.2f} (old way {row['old_flicker_vs_input']:.2f})"
    )
    print(
        f"new against old output: {row['frame_difference']:.2f}/255 mean per frame, {row['face_difference']:.2f}/255 "
        "at most in a face's box (the generators' batch arithmetic; the face pass is otherwise the same)"
    )
    print(
        f"engine process peak private memory: {engine_report.peak_private_mb:.0f} MB "
        f"({engine_report.peak_private_mb - torch_mb:.0f} above a bare `import torch`)"
    )
    user = statistics.median(timings.get("service", timings["engine"]))
    target = AVX2_TARGET_SECONDS if args.avx2 else TARGET_SECONDS
    print(f"4 s clip as a person gets it: {user:.1f} s ({'within' if user <= target else 'OVER'} {target:g} s)")


if __name__ == "__main__":
    main()
