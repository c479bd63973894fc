"""The engine: loads each style's generators once per process and stylizes photos with them."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from animegan.autotune import Decision, prepare_generator
from animegan.background import consume_behind, run_ahead
from animegan.clip import ClipLimits, ClipPlan, read_frames
from animegan.errors import WeightsMissing
from animegan.faces import FaceDetector
from animegan.images import decode_image, encode_image, to_tensor, to_uint8
from animegan.loading import size_multiple
from animegan.manifest import ModelFile, Style, default_weights_dir, find_style, list_styles
from animegan.mp4 import VIDEO_MIME, encode_segment, join_segments
from animegan.pipeline import (
    FACE_CROP_SIZES,
    MAX_OUTPUT_SIDE,
    ImageFn,
    StageCallback,
    Stylized,
    no_stage_report,
    stylize_image,
    target_size,
    to_generator_range,
)
from animegan.precision import Precision
from animegan.quantize import default_calibration_dir
from animegan.tiling import run_tiled
from animegan.video import plan_clip, stylize_frames
from animegan.warmup import TINY_SIDE, warm_up_photo

DEFAULT_WORKING_SIZE = 1024
DEFAULT_MAX_PIXELS = 50_000_000
# The scene generator runs at this long side at most; bigger pictures are brought up by a guided filter. At 1024 px
# that is 4x less generator work and memory (see docs/benchmarks.md for what it changes).
DEFAULT_SCENE_SIDE: int | None = 512
WHOLE_IMAGE_SIDE = 1024  # up to this the generator runs on the whole picture: fastest, and no tile seams at all
TILE_SIZE = 512  # beyond it, tiles this big keep the generator's memory bounded
TILE_OVERLAP = 64


class EngineOptions(TypedDict, total=False):
    """The keyword arguments of ``Engine``, for ``load`` to pass through."""

    weights_dir: Path | None
    precision: Precision
    working_size: int
    threads: int | None
    min_face_size: int
    max_pixels: int
    calibration_dir: Path | None
    scene_side: int | None


class Engine:
    """Everything one process needs to stylize photos; models load lazily and stay loaded.

    Args:
        weights_dir: installed weights (default: the user cache dir, or ``ANIMEBOT_WEIGHTS_DIR``).
        precision: "auto" (the fastest path measured to stay within 40 dB and 1/255 of eager fp32 on this CPU),
            "fp32" (eager reference), or a forced OpenVINO path: "openvino-fp32", "bf16", "int8", "int8-bf16"
            (see ``animegan.precision.PRECISION_HELP``).
        working_size: long side, in px, photos are stylized at unless a call asks for another size.
        threads: torch threads of this process (default: torch's choice).
        min_face_size: faces whose box is smaller than this (px, at working size) are left to the scene model.
        max_pixels: photos with more pixels are refused before their pixels are decoded.
        calibration_dir: real photos INT8 quantization is calibrated on (default: the set that ships with animegan).
        scene_side: long side the scene generator runs at at most; bigger pictures are brought up from it by a guided
            filter (``animegan.upsampling``). ``None`` runs it at the full size.
    """

    def __init__(
        self,
        weights_dir: Path | None = None,
        precision: Precision = "auto",
        working_size: int = DEFAULT_WORKING_SIZE,
        threads: int | None = None,
        min_face_size: int = 40,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        calibration_dir: Path | None = None,
        scene_side: int | None = DEFAULT_SCENE_SIDE,
    ) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else default_weights_dir()
        self.precision: Precision = precision
        self.working_size = working_size
        self.max_pixels = max_pixels
        self.calibration_dir = Path(calibration_dir) if calibration_dir else default_calibration_dir()
        self.scene_side = scene_side
        if threads:
            torch.set_num_threads(threads)
        self._detector = FaceDetector(min_face_size=min_face_size)
        self._generators: dict[tuple[str, int], ImageFn] = {}  # by model name and thread count
        self._decisions: dict[str, Decision] = {}

    def use_threads(self, threads: int) -> None:
        """Run on ``threads`` threads from now on: torch's, and each OpenVINO model compiled for that many (once
        per count, on first use; each count keeps its own buffers). A worker lent idle cores for a lone photo
        switches up, then back."""
        torch.set_num_threads(threads)

    def styles(self) -> list[Style]:
        """Every style, default first, marked installed or not."""
        return list_styles(self.weights_dir)

    def style(self, name: str | None) -> Style:
        """An installed style by name (the default when ``None``); typed errors say how to fix a missing one."""
        styles = self.styles()
        chosen = find_style(name, self.weights_dir) if name else styles[0]
        if not chosen.installed:
            raise WeightsMissing(
                f"The {chosen.title} style is not installed on this server. Install it with: "
                f"animebot weights pull {chosen.name}"
            )
        return chosen

    def face_generator(self, style: Style) -> ImageFn | None:
        """The generator that paints ``style``'s faces (aligned crops), or ``None`` for a style without a face pass."""
        return self.generator(style.face_model) if style.face_model else None

    def generator(self, model: ModelFile) -> ImageFn:
        """The [0, 1] -> [0, 1] generator of ``model`` on this engine's precision path, tiled for big images.

        With precision "auto" the path is the fastest faithful one measured for this CPU and model (measured once,
        then read from a small file beside the compiled models; see ``animegan.autotune``).
        """
        key = (model.name, torch.get_num_threads())  # OpenVINO fixes a model's thread count when compiling it
        if key not in self._generators:
            runner, self._decisions[model.name] = prepare_generator(
                model, self.weights_dir, self.precision, self.calibration_dir
            )
            fast = to_generator_range(runner)
            multiple = size_multiple(model)
            self._generators[key] = lambda image: run_tiled(
                fast,
                image,
                tile=WHOLE_IMAGE_SIDE if max(image.shape[-2:]) <= WHOLE_IMAGE_SIDE else TILE_SIZE,
                overlap=TILE_OVERLAP,
                multiple=multiple,
            )
        return self._generators[key]

    def precision_report(self) -> dict[str, str]:
        """Each loaded model's path and why, e.g. {"animeganv3_shinkai": "int8-bf16 (measured: 87 ms, 43.7 dB min,
        0.31/255); also bf16 140 ms, ..."}; models load lazily, so call ``load`` first for a full report."""
        return {name: decision.summary() for name, decision in self._decisions.items()}

    def load(self, style: str | None = None) -> None:
        """Load a style's models now rather than on the first photo."""
        chosen = self.style(style)
        for model in chosen.models:
            self.generator(model)

    def warm_up(self, style: str | None = None, whole_photo: bool = True) -> None:
        """Pay this process's first-photo costs now (see ``animegan.warmup``), not on a person's photo.

        With ``whole_photo`` (a worker's default style, before it counts as ready): one square face photo at the
        working size goes the whole way (decoding, the face detector, the scene and face generators at their largest
        shapes, the finish, the encoder). Without it (other styles, later): each model is loaded and run once tiny.
        """
        chosen = self.style(style)
        self.load(chosen.name)
        if not whole_photo:
            for model in chosen.models:
                self.generator(model)(torch.zeros(1, 3, TINY_SIDE, TINY_SIDE))
            return
        Engine.stylize_bytes(self, warm_up_photo(self.working_size), chosen.name)  # not a subclass's override
        scene_side = min(self.working_size, self.scene_side or self.working_size)
        largest_crop = max(FACE_CROP_SIZES)
        face = chosen.face_model
        if face is not None and (face.name != chosen.scene_model.name or scene_side < largest_crop):
            self.generator(face)(torch.zeros(1, 3, largest_crop, largest_crop))

    def stylize(
        self,
        image: Tensor,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        report: StageCallback = no_stage_report,
    ) -> tuple[Tensor, int]:
        """Stylize an RGB (1, 3, H, W) [0, 1] tensor at its own size; returns the image and the faces painted."""
        chosen = self.style(style)
        scene = self.generator(chosen.scene_model)
        face_model = self.face_generator(chosen) if faces else None
        found = []
        if face_model is not None and strength > 0:
            report("finding_faces", 0.0)
            found = self._detector.detect(image)
        result = stylize_image(
            image,
            scene,
            faces=found,
            face_model=face_model,
            finish=chosen.finish,
            strength=strength,
            scene_side=self.scene_side,
            report=report,
            trim_heap=True,
        )
        return result, len(found)

    def stylize_bytes(
        self,
        data: bytes,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        output_format: str | None = None,
        size: int | None = None,
        on_stage: StageCallback | None = None,
    ) -> Stylized:
        """Bytes of a photo in, bytes of its anime picture out; the entry point of every front end.

        ``size`` is the output's long side (default: the working size, at most 4096); photos are never enlarged
        beyond their own size except tiny ones. Raises ``AnimeganError`` subclasses with a plain message.
        """
        report = on_stage or no_stage_report
        self.style(style)  # fail fast on an unknown or missing style, before decoding
        report("decoding", 0.0)
        long_side = min(size or self.working_size, MAX_OUTPUT_SIDE)
        decoded = decode_image(data, max_pixels=self.max_pixels, min_side=long_side)
        source_height, source_width = decoded.rgb.shape[:2]
        height, width = target_size(source_height, source_width, long_side)
        rgb = _resize_uint8(decoded.rgb, (height, width))
        alpha = None if decoded.alpha is None else _resize_uint8(decoded.alpha, (height, width))
        result, face_count = self.stylize(to_tensor(rgb), style, strength, faces, report)
        report("finishing", 0.5)
        encoded, mime = encode_image(to_uint8(result), alpha, output_format)
        report("finishing", 1.0)
        return Stylized(encoded, mime, width, height, decoded.notes, face_count)

    # --- clips: plan once, stylize chunks anywhere, join (see animegan/clip.py) ---

    def plan_clip(
        self,
        data: bytes,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        limits: ClipLimits | None = None,
        on_stage: StageCallback | None = None,
    ) -> ClipPlan:
        """Read a clip once and plan it: size, frame rate, frame count, the clip's contrast curves, face tracks."""
        chosen = self.style(style)
        detect = self._detector.detect if faces and chosen.face_model and strength > 0 else None
        return plan_clip(data, limits or ClipLimits(), detect, on_stage or no_stage_report)

    def stylize_clip_chunk(
        self,
        data: bytes,
        plan: ClipPlan,
        first: int,
        stop: int,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        on_stage: StageCallback | None = None,
    ) -> bytes:
        """Output frames ``[first, stop)`` of a planned clip, stylized, as an MP4 segment (``mp4.join_segments``)."""
        chosen = self.style(style)
        scene = self.generator(chosen.scene_model)
        face_model = self.face_generator(chosen) if faces else None
        stop = min(stop, plan.frames)
        frames = stylize_frames(
            run_ahead(read_frames(data, plan, first, stop), name="clip-decode"),
            plan,
            first,
            scene,
            face_model=face_model,
            finish=chosen.finish,
            strength=strength,
            scene_side=self.scene_side,
            report=on_stage or no_stage_report,
            total=stop - first,
        )
        return consume_behind(lambda stylized: encode_segment(stylized, plan, first), frames, name="clip-encode")

    def join_clip(self, data: bytes, plan: ClipPlan, segments: list[tuple[int, bytes]]) -> Stylized:
        """The finished clip: the segments in order with the source's sound (H.264 MP4, faststart)."""
        most_faces = max((len(frame) for frame in plan.faces), default=0)
        return Stylized(
            join_segments(data, plan, segments), VIDEO_MIME, plan.width, plan.height, plan.notes, faces=most_faces
        )

    def stylize_clip_bytes(
        self,
        data: bytes,
        style: str | None = None,
        strength: float = 1.0,
        faces: bool = True,
        limits: ClipLimits | None = None,
        on_stage: StageCallback | None = None,
    ) -> Stylized:
        """A whole clip in this process (the CLI and library path; the bot spreads chunks over its workers)."""
        plan = self.plan_clip(data, style, strength, faces, limits, on_stage)
        segment = self.stylize_clip_chunk(data, plan, 0, plan.frames, style, strength, faces, on_stage)
        return self.join_clip(data, plan, [(0, segment)])


def _resize_uint8(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W) or (H, W, 3) uint8 pixels with Pillow (cheap on memory, even for 24-megapixel photos)."""
    if pixels.shape[:2] == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.LANCZOS))


def load(style: str | None = None, **engine_options: Unpack[EngineOptions]) -> Stylizer:
    """A ready stylizer for one style: ``animegan.load("shinkai")(photo)``; see ``Stylizer``."""
    engine = Engine(**engine_options)
    chosen = engine.style(style)
    engine.load(chosen.name)
    return Stylizer(engine, chosen.name)


class Stylizer:
    """A callable for other programs: PIL image, numpy (H, W, 3) uint8 or bytes in, the same kind out."""

    def __init__(self, engine: Engine, style: str) -> None:
        self.engine = engine
        self.style = style

    def __call__(
        self, photo: Image.Image | np.ndarray | bytes, strength: float = 1.0, faces: bool = True
    ) -> Image.Image | np.ndarray | bytes:
        if isinstance(photo, bytes):
            return self.engine.stylize_bytes(photo, self.style, strength, faces).data
        pixels = np.asarray(photo.convert("RGB")) if isinstance(photo, Image.Image) else photo
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(
                f"expected RGB pixels of shape (H, W, 3) and dtype uint8, got {pixels.shape} {pixels.dtype}"
            )
        result, _ = self.engine.stylize(to_tensor(pixels), self.style, strength, faces)
        out = to_uint8(result)
        return Image.fromarray(out) if isinstance(photo, Image.Image) else out
