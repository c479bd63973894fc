"""Engine benchmark: every precision of each generator side by side in one run, plus one photo's stage breakdown.

    python bench/engine.py [--weights-dir DIR] [--sizes 256 512 1024] [--repeats 5] [--threads 2]

Prints, per model and size: median ms, speed-up vs eager fp32 PyTorch, PSNR vs eager fp32, and the process's
RSS after that variant ran; then the peak memory of a fresh worker doing one 512 px face photo; then that photo's
stages (decode, detect, align, generator, filters, encode). Ratios are measured in the same run, so a noisy
machine moves all columns together.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from animegan.engine import Engine
from animegan.faces import FaceDetector, align_face, paint_faces
from animegan.filters import equalize_contrast, shinkai_finish
from animegan.images import decode_image, encode_image, to_tensor, to_uint8
from animegan.loading import build_generator
from animegan.manifest import default_weights_dir, load_manifest
from animegan.pipeline import FACE_CROP_SIZE
from animegan.precision import fp32_runner, openvino_runner

REPO = Path(__file__).resolve().parents[1]
PHOTOS = [REPO / "examples" / name for name in ("astronaut.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg")]
MODELS = ["animeganv3_shinkai", "animeganv2_hayao_int8"]
Runner = Callable[[torch.Tensor], torch.Tensor]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def median_ms(run: Runner, image: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    output = run(image)  # warm-up (and OpenVINO's first-shape compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = run(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, output


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(4 / mse)


def photo_at(side: int) -> torch.Tensor:
    """The astronaut portrait scaled to side x side, in [-1, 1]."""
    picture = Image.open(PHOTOS[0]).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    return to_tensor(np.asarray(picture)) * 2 - 1


def calibration_images() -> list[torch.Tensor]:
    return [to_tensor(np.asarray(Image.open(p).convert("RGB").resize((512, 512)))) * 2 - 1 for p in PHOTOS]


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(image: torch.Tensor) -> torch.Tensor:
        nhwc = image.permute(0, 2, 3, 1).numpy().astype(np.float16)
        return torch.from_numpy(session.run(None, {name: nhwc})[0].astype(np.float32)).permute(0, 3, 1, 2)

    return run


def variants(model_name: str, weights_dir: Path, cache: Path, threads: int) -> dict[str, Runner]:
    model = load_manifest().models[model_name]
    module = build_generator(model, weights_dir)
    runners: dict[str, Runner] = {"torch eager fp32": fp32_runner(module)}
    if model.file.endswith(".onnx"):
        runners["onnxruntime (fp16 ONNX file)"] = onnxruntime_runner(model.path(weights_dir), threads)
    runners["openvino fp32"] = openvino_runner(lambda: module, model_name, "fp32", cache)
    runners["openvino bf16 (default)"] = openvino_runner(lambda: module, model_name, "bf16", cache)
    runners["openvino int8+bf16"] = openvino_runner(lambda: module, model_name, "int8", cache, calibration_images)
    return runners


def table(weights_dir: Path, sizes: list[int], repeats: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as cache:
        for model_name in MODELS:
            runners = variants(model_name, weights_dir, Path(cache), threads)
            print(f"\n## {model_name}")
            print(f"{'size':>5} {'variant':<30} {'ms':>8} {'x eager':>8} {'PSNR dB':>8} {'RSS MB':>7}")
            for size in sizes:
                image = photo_at(size)
                reference_ms, reference = median_ms(runners["torch eager fp32"], image, repeats)
                for name, run in runners.items():
                    ms, out = (reference_ms, reference) if name == "torch eager fp32" else median_ms(run, image, repeats)
                    print(f"{size:>5} {name:<30} {ms:>8.0f} {reference_ms / ms:>8.2f} {psnr(out, reference):>8.1f} "
                          f"{rss_mb():>7.0f}")
            del runners
            gc.collect()


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
WORKER_SCRIPT = """
import json, sys
from pathlib import Path
from animegan.engine import Engine
engine = Engine(Path(sys.argv[1]), threads=int(sys.argv[3]), working_size=512)
result = engine.stylize_bytes(Path(sys.argv[2]).read_bytes(), "shinkai")
status = {l.split(":")[0]: int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith(("VmHWM", "RssAnon"))}
print(json.dumps({"peak_rss_mb": status["VmHWM"], "anon_mb": status["RssAnon"]}))
"""
TORCH_ONLY = "import torch; print(next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')))"


def worker_memory(weights_dir: Path, threads: int) -> None:
    done = subprocess.run([sys.executable, "-c", WORKER_SCRIPT, str(weights_dir), str(PHOTOS[0]), str(threads)],
                          capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    torch_only = subprocess.run([sys.executable, "-c", TORCH_ONLY], capture_output=True, text=True, check=True)
    print("\n## worker memory (fresh process, one 512 px face photo, default path)")
    print(f"peak RSS {report['peak_rss_mb']:.0f} MB, of which anonymous (private) {report['anon_mb']:.0f} MB; "
          f"`import torch` alone: {float(torch_only.stdout):.0f} MB RSS")


def stages(weights_dir: Path, repeats: int) -> None:
    """One end-to-end 512 px face photo, each stage timed as the engine runs it (median of ``repeats``)."""
    engine = Engine(weights_dir, working_size=512)
    style = engine.style("shinkai")
    scene = engine.generator(style.scene_model)
    face_model = engine.generator(style.face_model)  # type: ignore[arg-type]
    detector = FaceDetector()
    data = PHOTOS[0].read_bytes()
    timings: dict[str, list[float]] = {}

    def timed(name: str, step: Callable[[], object]) -> object:
        start = time.perf_counter()
        value = step()
        timings.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return value

    for _ in range(repeats + 1):
        decoded = timed("decode", lambda: decode_image(data, min_side=512))
        photo = to_tensor(decoded.rgb)  # type: ignore[attr-defined]
        faces = timed("detect faces", lambda: detector.detect(photo))
        prepared = timed("CLAHE", lambda: equalize_contrast(photo))
        styled = timed("generator (scene)", lambda: scene(prepared))
        timed("align faces", lambda: [align_face(prepared, face, FACE_CROP_SIZE) for face in faces])
        styled = timed("faces: generator + warp back", lambda: paint_faces(prepared, styled, faces, face_model))
        finished = timed("Shinkai filters", lambda: shinkai_finish(styled))
        timed("encode JPEG", lambda: encode_image(to_uint8(finished), None, "jpeg"))
        timed("end to end (stylize_bytes)", lambda: engine.stylize_bytes(data, "shinkai"))
    print("\n## one 512 px face photo (astronaut), stages, median ms")
    for name, values in timings.items():
        print(f"{name:<30} {statistics.median(values[1:]):>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", type=Path, default=default_weights_dir())
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    table(args.weights_dir, args.sizes, args.repeats, args.threads)
    worker_memory(args.weights_dir, args.threads)
    stages(args.weights_dir, args.repeats)


if __name__ == "__main__":
    main()
