"""``auto`` by measurement: time a generator's candidate paths on a few photos, keep the fastest faithful one.

Which path is fastest is not a matter of CPU flags: on an AVX-512 BF16 CPU the bf16 model loses to INT8 with bf16
maths for the rest, and on another CPU, OpenVINO release or model it may not. So when a model is prepared and no
decision is cached for this CPU, each path of ``cpu.candidate_paths()`` runs on a few held-out calibration photos of
varied shapes (the scene's 512 px and, for a face model, its crop sizes), photo by photo in turn, and the fastest
one within the fidelity floor against eager fp32 wins: ``MIN_PSNR_DB`` on every photo and no channel mean moved by
more than ``MAX_COLOUR_SHIFT``. Where no OpenVINO path gets there, eager fp32 runs.

The decision is a small JSON file beside the compiled models, named by everything it depends on: the CPU model, its
ISA flags (capped by ``ONEDNN_MAX_CPU_ISA``), the OpenVINO version, the weights (name and sha), the graph version,
the calibration photos and the sample shapes. Processes that start at once measure once: the others wait on a lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from animegan import cpu
from animegan.loading import build_generator, converted_path, size_multiple
from animegan.manifest import ModelFile, load_manifest
from animegan.precision import (
    COMPILED_DIR,
    GRAPH_VERSION,
    CalibrationFactory,
    ModuleFactory,
    Precision,
    fp32_runner,
    openvino_version,
    optimize,
)
from animegan.quantize import (
    calibration_digest,
    calibration_photos,
    calibration_set,
    calibration_size,
    load_calibration_image,
)
from animegan.tiling import ImageFn

log = logging.getLogger(__name__)

MIN_PSNR_DB = 40.0  # on every sample photo, against eager fp32
MAX_COLOUR_SHIFT = 1.0  # in 8-bit steps: the largest move of a channel's mean against eager fp32
SCENE_SIDE = 512  # the scene generator's working side (animegan.engine.DEFAULT_SCENE_SIDE)
SCENE_SHAPES = 3  # scene photos of this many different shapes
FACE_SIDES = (256, 384, 512)  # the face crop sizes (animegan.pipeline.FACE_CROP_SIZES)
ROUNDS = 3  # each candidate times every photo this often, interleaved with the others; the median round counts
# Bumped when what is measured or how it is judged changes, so every cached decision is taken again.
DECISION_VERSION = 1
REFERENCE = "fp32"  # eager PyTorch: the reference, and the path taken where no candidate is faithful


@dataclass(frozen=True)
class Measurement:
    """One candidate path on the sample photos: mean ms per photo (median round), PSNR and colour shift."""

    path: str
    ms: float
    min_db: float
    mean_db: float
    colour_shift: float  # largest move of a channel's mean, in 8-bit steps

    @property
    def faithful(self) -> bool:
        """Within the fidelity floor: ``MIN_PSNR_DB`` on every photo and ``MAX_COLOUR_SHIFT`` at most."""
        return self.min_db >= MIN_PSNR_DB and self.colour_shift <= MAX_COLOUR_SHIFT

    def describe(self) -> str:
        """E.g. "int8-bf16 87 ms, 43.7 dB min, 0.31/255"."""
        return f"{self.path} {self.ms:.0f} ms, {self.min_db:.1f} dB min, {self.colour_shift:.2f}/255"


@dataclass(frozen=True)
class Decision:
    """The path a model runs on, and why: "measured" now, "cached" from an earlier measurement, or "forced"."""

    path: str
    source: str
    measurements: tuple[Measurement, ...] = ()
    key: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs and /readyz: the chosen path with its numbers, then the others measured."""
        if not self.measurements:
            return f"{self.path} ({self.source})"
        chosen = next((m for m in self.measurements if m.path == self.path), None)
        head = f"{self.path} ({self.source}" + (f": {chosen.describe().split(' ', 1)[1]})" if chosen else ")")
        others = [m.describe() + ("" if m.faithful else " [below floor]") for m in self.measurements if m is not chosen]
        return head + ("; also " + "; ".join(others) if others else "")

    def to_json(self) -> str:
        """The decision as the JSON file keeps it."""
        return json.dumps(
            {"path": self.path, "measurements": [asdict(m) for m in self.measurements], "key": self.key}, indent=2
        )

    @classmethod
    def from_json(cls, text: str, source: str = "cached") -> Decision:
        """A decision read back from ``to_json``."""
        raw = json.loads(text)
        measurements = tuple(Measurement(**entry) for entry in raw["measurements"])
        return cls(path=str(raw["path"]), source=source, measurements=measurements, key=dict(raw["key"]))


@dataclass(frozen=True)
class Platform:
    """What a decision holds for: the CPU, its ISA flags as OpenVINO may use them, and OpenVINO's version."""

    cpu_model: str
    flags: tuple[str, ...]
    isa_limit: str
    openvino: str

    @classmethod
    def this_machine(cls) -> Platform:
        """This process's CPU, flags (capped by ``ONEDNN_MAX_CPU_ISA``) and OpenVINO."""
        return cls(cpu.model_name(), tuple(sorted(cpu.cpu_flags())), cpu.isa_limit(), openvino_version())

    def candidate_paths(self) -> tuple[str, ...]:
        """The OpenVINO paths worth timing here (``cpu.candidate_paths``)."""
        return cpu.candidate_paths(frozenset(self.flags))


def psnr_db(output: Tensor, reference: Tensor) -> float:
    """PSNR of two [-1, 1] images (peak-to-peak 2), from their mean squared error."""
    mse = float(((output.float() - reference.float()) ** 2).mean())
    return float("inf") if mse <= 0 else 10 * float(np.log10(4.0 / mse))


def colour_shift(output: Tensor, reference: Tensor) -> float:
    """The largest difference of a channel's mean between two [-1, 1] (B, 3, H, W) images, in 8-bit steps."""
    return float((output.float() - reference.float()).mean(dim=(0, 2, 3)).abs().max()) * 127.5


def measure(candidates: Mapping[str, ImageFn], reference: ImageFn, images: Sequence[Tensor]) -> list[Measurement]:
    """Time and check each candidate on ``images`` (each (1, 3, H, W) in [-1, 1]) against ``reference``.

    Every photo goes through every candidate in turn, ``ROUNDS`` times, so a busy machine slows all of them alike;
    a candidate's time is its median round. The first call of each candidate (set-up of a dynamic shape) is not timed.
    """
    wanted = [reference(image) for image in images]
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for name, run in candidates.items():
        for image, want in zip(images, wanted, strict=True):
            got = run(image)
            scores[name].append((psnr_db(got, want), colour_shift(got, want)))
    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        spent = dict.fromkeys(candidates, 0.0)
        for image in images:
            for name, run in candidates.items():
                start = time.perf_counter()
                run(image)
                spent[name] += time.perf_counter() - start
        for name, seconds in spent.items():
            rounds[name].append(seconds * 1000 / len(images))
    return [
        Measurement(
            path=name,
            ms=statistics.median(rounds[name]),
            min_db=min(db for db, _ in scores[name]),
            mean_db=statistics.mean(db for db, _ in scores[name]),
            colour_shift=max(shift for _, shift in scores[name]),
        )
        for name in candidates
    ]


def fastest_faithful(measurements: Sequence[Measurement]) -> str:
    """The fastest faithful path measured, else ``REFERENCE`` (eager fp32)."""
    faithful = [m for m in measurements if m.faithful]
    return min(faithful, key=lambda m: m.ms).path if faithful else REFERENCE


def choose(candidates: Mapping[str, ImageFn], reference: ImageFn, images: Sequence[Tensor]) -> Decision:
    """Measure ``candidates`` against ``reference`` on ``images`` and keep the fastest faithful one."""
    measurements = measure(candidates, reference, images)
    return Decision(fastest_faithful(measurements), "measured", tuple(measurements))


def decision_file(cache_dir: Path, model_key: str, key: Mapping[str, str]) -> Path:
    """Where the decision for ``model_key`` under ``key`` (everything it depends on) is cached."""
    digest = hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / COMPILED_DIR / f"{model_key}-auto-{digest}.json"


def decision_key(platform: Platform, model_key: str, calibration_key: str, samples: str) -> dict[str, str]:
    """Everything a decision depends on, as it is written into its file."""
    return {
        "cpu": platform.cpu_model,
        "flags": " ".join(platform.flags),
        "isa_limit": platform.isa_limit,
        "openvino": platform.openvino,
        "weights": model_key,
        "graph": str(GRAPH_VERSION),
        "calibration": calibration_key,
        "samples": samples,
        "version": str(DECISION_VERSION),
    }


def load_decision(path: Path, key: Mapping[str, str]) -> Decision | None:
    """The decision cached at ``path`` if it is there, readable and made under ``key``; else ``None``."""
    try:
        decision = Decision.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return decision if decision.key == dict(key) else None


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing): one process measures, the others wait for its result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _save(path: Path, decision: Decision) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    partial.write_text(decision.to_json())
    partial.replace(path)


def decide(
    build_module: ModuleFactory,
    model_key: str,
    cache_dir: Path,
    calibration: CalibrationFactory,
    calibration_key: str,
    samples: Callable[[], list[np.ndarray]],
    samples_key: str,
    platform: Platform | None = None,
) -> Decision:
    """The path "auto" takes for a model on this machine: cached, else measured now (and cached).

    Args:
        build_module: makes the fp32 generator (the reference, and the source of the OpenVINO models).
        model_key: the weights' name and sha (``converted_path(...).stem``).
        cache_dir: the weights folder; models and decisions live in its ``compiled`` folder.
        calibration: the INT8 calibration photos (used only if the INT8 model is not cached yet).
        calibration_key: their digest.
        samples: the photos to measure on, each (1, 3, H, W) float32 in [-1, 1]; made only when measuring.
        samples_key: names them, for the key.
        platform: what the decision is keyed by (default: this machine).
    """
    platform = platform or Platform.this_machine()
    key = decision_key(platform, model_key, calibration_key, samples_key)
    path = decision_file(cache_dir, model_key, key)
    cached = load_decision(path, key)
    if cached is not None:
        log.info("precision of %s: %s", model_key, cached.summary())
        return cached
    with _exclusive(path.with_suffix(".lock")):
        cached = load_decision(path, key)  # another process may have measured while this one waited
        if cached is not None:
            return cached
        started = time.perf_counter()
        candidates = {
            name: optimize(build_module, model_key, name, cache_dir, calibration, calibration_key)
            for name in platform.candidate_paths()
        }
        prepared = time.perf_counter()
        images = [torch.from_numpy(image) for image in samples()]
        measured = choose(candidates, fp32_runner(build_module()), images)
        decision = Decision(measured.path, "measured", measured.measurements, key)
        _save(path, decision)
    log.info(
        "precision of %s on %s (models ready in %.0f s, measured in %.0f s): %s",
        model_key,
        cpu.describe(),
        prepared - started,
        time.perf_counter() - prepared,
        decision.summary(),
    )
    return decision


def model_roles(model: ModelFile) -> tuple[bool, bool]:
    """Whether ``model`` paints scenes, and whether it paints faces, in any style of the manifest."""
    styles = load_manifest().styles.values()
    face_models = {style.face_model.name for style in styles if style.face_model is not None}
    scene_models = {style.scene_model.name for style in styles}
    return model.name in scene_models or model.name not in face_models, model.name in face_models


def _face_crop(photo: Path, side: int) -> np.ndarray:
    """The centre square of ``photo`` at ``side`` px, like an aligned face crop: (1, 3, side, side) in [-1, 1]."""
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    edge = min(rgb.size)
    left, top = (rgb.width - edge) // 2, (rgb.height - edge) // 2
    square = rgb.crop((left, top, left + edge, top + edge)).resize((side, side), Image.Resampling.LANCZOS)
    pixels = np.asarray(square, dtype=np.float32)
    return (pixels.transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)


@dataclass(frozen=True)
class Sample:
    """One photo a model's paths are measured on: a scene at ``SCENE_SIDE`` or a face crop at its side."""

    photo: Path
    side: int
    face: bool
    name: str

    def load(self, multiple: int) -> np.ndarray:
        """(1, 3, H, W) float32 in [-1, 1], H and W multiples of ``multiple``."""
        return (
            _face_crop(self.photo, self.side) if self.face else load_calibration_image(self.photo, self.side, multiple)
        )


def samples(photos: Sequence[Path], multiple: int, scene: bool, face: bool) -> list[Sample]:
    """The photos a model's paths are measured on (their names are part of the decision's key).

    Held-out calibration photos only (odd positions are never calibrated on): for a scene model, ``SCENE_SHAPES``
    photos of different shapes at ``SCENE_SIDE``; for a face model, a portrait's centre at each of ``FACE_SIDES``.
    Only the photos' headers are read here.
    """
    held_out = list(photos[1::2])
    chosen: list[Sample] = []
    if scene:
        shapes: set[tuple[int, int]] = set()
        for photo in held_out:
            with Image.open(photo) as image:
                shape = calibration_size(image.size, SCENE_SIDE, multiple)
            if shape not in shapes and len(shapes) < SCENE_SHAPES:
                shapes.add(shape)
                chosen.append(Sample(photo, SCENE_SIDE, False, f"{photo.stem}@{shape[0]}x{shape[1]}"))
    if face:
        portraits = [photo for photo in held_out if photo.stem.startswith("portrait")] or held_out
        for index, side in enumerate(FACE_SIDES):
            photo = portraits[index % len(portraits)]
            chosen.append(Sample(photo, side, True, f"face:{photo.stem}@{side}"))
    return chosen


def unmeasured_path(platform: Platform) -> str:
    """What "auto" takes where nothing can be measured (no calibration photos, so no INT8 model either)."""
    return next((path for path in platform.candidate_paths() if "int8" not in path), "openvino-fp32")


def prepare_generator(
    model: ModelFile, weights_dir: Path, precision: Precision, calibration_dir: Path
) -> tuple[ImageFn, Decision]:
    """The [-1, 1] generator of an installed ``model`` on the path ``precision`` ("auto": measured, see ``decide``),
    and the decision that chose it."""
    key = converted_path(model, weights_dir).stem
    photos = calibration_photos(calibration_dir)
    multiple = size_multiple(model)

    def build() -> torch.nn.Module:
        return build_generator(model, weights_dir)

    def calibration() -> tuple[list[np.ndarray], list[np.ndarray]]:
        return calibration_set(photos, multiple)

    digest = calibration_digest(photos)
    if precision == "auto" and not photos:
        decision = Decision(unmeasured_path(Platform.this_machine()), "unmeasured: no calibration photos")
    elif precision == "auto":
        chosen = samples(photos, multiple, *model_roles(model))
        decision = decide(
            build,
            key,
            weights_dir,
            calibration,
            digest,
            lambda: [sample.load(multiple) for sample in chosen],
            ",".join(sample.name for sample in chosen),
        )
    else:
        decision = Decision(precision, "forced")
    return optimize(build, key, decision.path, weights_dir, calibration, digest), decision
