"""Engine benchmark: the default path against onnxruntime fp32 and eager PyTorch, as a bot sees photos.

    python bench/engine.py [--weights-dir DIR] [--threads 2] [--photos 12] [--output docs/benchmarks.md]
    python bench/engine.py --generator-only   # the generator table alone, printed (nothing written)

Every ratio is measured side by side in one run: each photo goes through every variant in turn, so a noisy
machine moves all columns together. Photos are the calibration set (real photos of varied shapes) taken in turn,
never one shape repeated. Prints, and writes to ``--output`` with the machine it ran on (from its "# Run" heading
on; the text above it is kept):

1. the generator at 512 px: ms per photo, x onnxruntime fp32 (the release model converted to fp32), x eager fp32,
   PSNR against eager fp32 and the largest colour shift of a channel's mean, for every candidate path of this CPU,
   the one ``auto`` measured and chose in bold with its decision; then, on a CPU above AVX2, the same table from a
   child process capped to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, see ``AVX2_NOTE`` for what that does not emulate);
2. end to end (``stylize_bytes``) for one-face photos at 512 and 1024 px, the face pass against the scene generator,
   and the scene generator at 1024 px against running it at 512 px and upsampling with the guided filter;
3. peak private memory of a fresh worker above a bare ``import torch``: a 1024 px face photo and a 24 MP photo.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from animegan import cpu
from animegan.autotune import Decision, prepare_generator
from animegan.engine import Engine
from animegan.faces import FaceDetector, paint_faces
from animegan.filters import equalize_contrast
from animegan.images import decode_image, to_tensor
from animegan.loading import build_generator, converted_path
from animegan.manifest import default_weights_dir, load_manifest
from animegan.pipeline import FACE_CROP_SIZES, resize
from animegan.precision import fp32_runner, optimize
from animegan.quantize import (
    calibration_digest,
    calibration_photos,
    calibration_set,
    default_calibration_dir,
    load_calibration_image,
)
from animegan.upsampling import generator_size, guided_upsample
from bench.memory import bare_torch_mb, run_python
from bench.onnx_fp32 import convert_to_fp32
from bench.photos import calibration_jpeg

REPO = Path(__file__).resolve().parents[1]
MODEL = "animeganv3_shinkai"
FACE_PHOTO = "portrait_man_talking.jpg"
RUN_HEADING = "# Run"  # docs/benchmarks.md: the bench rewrites everything from this heading on
Runner = Callable[[torch.Tensor], torch.Tensor]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [-1, 1] images."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(4 / mse))


def colour_shift(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference of a channel's mean between two [-1, 1] images, in 0..255 steps."""
    return float((a - b).mean(dim=(0, 2, 3)).abs().max()) * 127.5


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(image: torch.Tensor) -> torch.Tensor:
        nhwc = np.ascontiguousarray(image.permute(0, 2, 3, 1).numpy())
        return torch.from_numpy(session.run(None, {name: nhwc})[0]).permute(0, 3, 1, 2)

    return run


def generator_variants(weights_dir: Path, threads: int, scratch: Path) -> tuple[dict[str, Runner], Decision]:
    """Eager fp32, onnxruntime fp32 and every candidate path of this CPU; the chosen one named "auto: PATH"."""
    model = load_manifest().models[MODEL]
    key = converted_path(model, weights_dir).stem
    photos = calibration_photos(default_calibration_dir())
    calibration = lambda: calibration_set(photos)  # noqa: E731
    calibration_key = calibration_digest(photos)
    _, decision = prepare_generator(model, weights_dir, "auto", default_calibration_dir())

    def build() -> torch.nn.Module:  # a fresh module each time: compiling one subsamples its LADE statistics
        return build_generator(model, weights_dir)

    release = convert_to_fp32(model.path(weights_dir), scratch / "release_fp32.onnx")
    variants: dict[str, Runner] = {
        "torch eager fp32": fp32_runner(build()),
        "onnxruntime fp32 (release model)": onnxruntime_runner(release, threads),
    }
    for path in cpu.candidate_paths():
        name = f"auto: {path}" if path == decision.path else path
        variants[name] = optimize(build, key, path, weights_dir, calibration, calibration_key)
    return variants, decision


def generator_table(weights_dir: Path, threads: int, count: int, side: int) -> list[str]:
    photos = calibration_photos(default_calibration_dir())
    step = max(1, len(photos) // count)
    images = [torch.from_numpy(load_calibration_image(photo, side)) for photo in photos[::step][:count]]
    with tempfile.TemporaryDirectory() as scratch:
        variants, decision = generator_variants(weights_dir, threads, Path(scratch))
        for run in variants.values():
            run(images[0])  # first-call set-up, outside the timing
        times: dict[str, list[float]] = {name: [] for name in variants}
        quality: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for image in images:
            reference = None
            for name, run in variants.items():
                start = time.perf_counter()
                output = run(image)
                times[name].append(time.perf_counter() - start)
                reference = output if reference is None else reference
                quality[name].append((psnr(output, reference), colour_shift(output, reference)))
    shapes = sorted({f"{i.shape[-1]}x{i.shape[-2]}" for i in images})
    lines = [
        f"### Generator ({MODEL}) at {side} px on {cpu.describe()}: {len(images)} photos of {len(shapes)} "
        f"shapes in turn ({', '.join(shapes)})",
        "",
        f"`auto` measured and chose **{decision.path}**: {decision.summary()}.",
        "",
        "| variant | ms / photo (mean; min-max) | x onnxruntime fp32 | x eager fp32 "
        "| PSNR vs eager fp32 (min / mean dB) | colour shift (max, /255) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ort_ms = statistics.mean(times["onnxruntime fp32 (release model)"]) * 1000
    eager_ms = statistics.mean(times["torch eager fp32"]) * 1000
    for name in variants:
        ms = statistics.mean(times[name]) * 1000
        spread = f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f}"
        psnrs = [p for p, _ in quality[name]]
        quality_cell = "reference" if name == "torch eager fp32" else f"{min(psnrs):.1f} / {statistics.mean(psnrs):.1f}"
        label = f"**{name}**" if name.startswith("auto:") else name
        lines.append(
            f"| {label} | {ms:.0f} ({spread}) | {ort_ms / ms:.2f} | {eager_ms / ms:.2f} | {quality_cell} | "
            f"{max(s for _, s in quality[name]):.2f} |"
        )
    return lines


AVX2_ENVIRONMENT = {cpu.ISA_LIMIT_VARIABLE: "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
AVX2_NOTE = (
    "The AVX2 class on this machine: a child process with `ONEDNN_MAX_CPU_ISA=AVX2` (OpenVINO's convolutions become "
    "`jit_avx2_I8` / `brgconv_avx2_*`, no bf16) and `ATEN_CPU_CAPABILITY=avx2` (eager PyTorch). Not emulated: "
    "onnxruntime's MLAS kernels take no ISA cap and still use AVX-512 (so its column is faster than on a real AVX2 CPU "
    "and the ratios are, if anything, low), and a few of OpenVINO's own kernels (MVN, Interpolate, FakeQuantize, "
    "ReduceMean, about 13 % of the INT8 path's time) keep their AVX-512 versions."
)


def avx2_generator_table(args: argparse.Namespace) -> list[str]:
    """The generator table again in a child process capped to AVX2 (see ``AVX2_NOTE``)."""
    if cpu.isa_limit() or not cpu.hardware_flags() & {"avx512f"}:
        return []  # already capped, or the CPU has no more than AVX2: the first table is that class
    command = [
        sys.executable,
        __file__,
        "--generator-only",
        f"--weights-dir={args.weights_dir}",
        f"--threads={args.threads}",
        f"--photos={args.photos}",
    ]
    child = subprocess.run(
        command, env={**os.environ, **AVX2_ENVIRONMENT}, capture_output=True, text=True, check=True, cwd=REPO
    )
    return [*child.stdout.rstrip("\n").splitlines(), "", AVX2_NOTE]


def face_photo(side: int) -> bytes:
    """A one-face photo from the calibration set, resized so its long side is ``side``, as JPEG bytes."""
    return calibration_jpeg(FACE_PHOTO, side)


def timed(step: Callable[[], object], repeats: int) -> float:
    step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def end_to_end(weights_dir: Path, repeats: int) -> list[str]:
    lines = [
        "### End to end (`stylize_bytes`, default path, one-face photo, median)",
        "",
        "| photo | ms | faces |",
        "|---|---:|---:|",
    ]
    for side in (512, 1024):
        engine = Engine(weights_dir, working_size=side)
        data = face_photo(side)
        faces = engine.stylize_bytes(data).faces
        label = f"{side} px" + (" (scene generator at 512 + guided upsampling)" if side > 512 else "")
        lines.append(f"| {label} | {timed(partial(engine.stylize_bytes, data), repeats):.0f} | {faces} |")
    full = Engine(weights_dir, working_size=1024, scene_side=None)
    data = face_photo(1024)
    lines.append(
        f"| 1024 px, scene generator at full size (`scene_side=None`) | "
        f"{timed(lambda: full.stylize_bytes(data), repeats):.0f} | {full.stylize_bytes(data).faces} |"
    )

    engine = Engine(weights_dir, working_size=1024)
    style = engine.style(None)
    scene, face_model = engine.generator(style.scene_model), engine.generator(style.face_model)  # type: ignore[arg-type]
    for side in (512,):
        photo = equalize_contrast(to_tensor(decode_image(face_photo(side)).rgb))
        found = FaceDetector().detect(photo)
        stylized = scene(photo)
        scene_ms = timed(partial(scene, photo), repeats)
        face_ms = timed(partial(paint_faces, photo, stylized, found, face_model, sizes=FACE_CROP_SIZES), repeats)
        lines.append(
            f"| {side} px: scene generator {scene_ms:.0f} ms, face pass {face_ms:.0f} ms "
            f"({100 * face_ms / scene_ms:.0f} % of the scene) | | {len(found)} |"
        )
    return lines


def upsampling_comparison(weights_dir: Path, output_dir: Path) -> list[str]:
    """Scene generator at 1024 against 512 + guided upsampling: time, PSNR, and side-by-side crops for the eye."""
    engine = Engine(weights_dir, working_size=1024)
    scene = engine.generator(engine.style(None).scene_model)
    photo = equalize_contrast(to_tensor(decode_image(face_photo(1024)).rgb))
    full = scene(photo)
    height, width = photo.shape[-2:]
    small_size = generator_size(height, width, 512)
    guided = guided_upsample(scene(resize(photo, small_size)), photo)
    full_ms = timed(lambda: scene(photo), 2)
    guided_ms = timed(lambda: guided_upsample(scene(resize(photo, small_size)), photo), 2)
    height, width = photo.shape[-2:]
    top, left = height // 4, width // 3
    crops = [image[0, :, top : top + 320, left : left + 320] for image in (photo, full, guided)]
    strip = torch.cat(crops, dim=2).permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
    Image.fromarray(strip).save(output_dir / "upsampling_crops.jpg", quality=90)
    return [
        "### 1024 px scene: full-size generator against 512 px + guided upsampling",
        "",
        f"Full size {full_ms:.0f} ms, 512 + guided {guided_ms:.0f} ms ({full_ms / guided_ms:.2f}x); "
        f"PSNR of the guided result against full-size inference: {psnr(guided * 2 - 1, full * 2 - 1):.1f} dB. "
        "Crops (photo, full size, 512 + guided): `docs/upsampling_crops.jpg`.",
    ]


MEMORY_SCRIPT = """
import sys
from pathlib import Path
from animegan.engine import Engine
engine = Engine(Path(sys.argv[1]), threads=int(sys.argv[3]))
engine.stylize_bytes(Path(sys.argv[2]).read_bytes(), size=int(sys.argv[4]))
"""


def memory(weights_dir: Path, threads: int, scratch: Path) -> list[str]:
    face = scratch / "face1024.jpg"
    face.write_bytes(face_photo(1024))
    big = scratch / "big.jpg"
    with Image.open(default_calibration_dir() / "landscape_mountains_path.jpg") as photo:
        photo.convert("RGB").resize((6000, 4000), Image.Resampling.BICUBIC).save(big, quality=85)
    floor = bare_torch_mb()
    lines = [
        "### Peak private memory of a fresh worker (RssAnon, sampled)",
        "",
        f"A bare `import torch` holds {floor:.0f} MB.",
        "",
        "| photo | peak MB | above torch MB |",
        "|---|---:|---:|",
    ]
    for label, path in (("1024 px one-face photo", face), ("24 MP photo, default size 1024", big)):
        peak = run_python(MEMORY_SCRIPT, str(weights_dir), str(path), str(threads), "1024").peak_private_mb
        lines.append(f"| {label} | {peak:.0f} | {peak - floor:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", type=Path, default=default_weights_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photos", type=int, default=12, help="photos of the calibration set timed in turn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--generator-only", action="store_true", help="print the generator table of this process's CPU class only"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.generator_only:
        print("\n".join(generator_table(args.weights_dir, args.threads, args.photos, 512)), flush=True)
        return
    import onnxruntime
    import openvino

    header = [
        RUN_HEADING,
        "",
        f"Written by `bench/engine.py` on {time.strftime('%Y-%m-%d')}. Machine: {cpu.describe()}; "
        f"{args.threads} threads; {platform.python_implementation()} {platform.python_version()}, torch "
        f"{torch.__version__}, OpenVINO {openvino.get_version().split('-')[0]}, onnxruntime {onnxruntime.__version__}.",
        "",
    ]
    print("\n".join(header), flush=True)
    sections = [header]
    with tempfile.TemporaryDirectory() as scratch:
        makers: list[Callable[[], list[str]]] = [
            partial(generator_table, args.weights_dir, args.threads, args.photos, 512),
            partial(avx2_generator_table, args),
            partial(end_to_end, args.weights_dir, args.repeats),
            partial(upsampling_comparison, args.weights_dir, args.output.parent),
            partial(memory, args.weights_dir, args.threads, Path(scratch)),
        ]
        for make in makers:
            lines = [*make(), ""]
            print("\n".join(lines), flush=True)
            sections.append(lines)
    run = "\n".join(line for section in sections for line in section)
    args.output.write_text(kept_preamble(args.output) + run)


def kept_preamble(path: Path) -> str:
    """The hand-written text above the run in ``path`` (what each precision is, what was tried), kept as it is."""
    text = path.read_text() if path.is_file() else ""
    cut = text.find(f"\n{RUN_HEADING}\n")
    return text[: cut + 1] if cut >= 0 else "# Engine benchmarks\n\n"


if __name__ == "__main__":
    main()
