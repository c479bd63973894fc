"""Photos the benches (and a few tests) feed the engine: licensed calibration photos at a chosen size."""

from __future__ import annotations

import io

from PIL import Image

from animegan.quantize import default_calibration_dir


def calibration_jpeg(name: str, side: int) -> bytes:
    """The calibration photo ``name`` (weights/calibration/SOURCES.md) resized so its long side is ``side`` px,
    as JPEG bytes (quality 92)."""
    with Image.open(default_calibration_dir() / name) as photo:
        rgb = photo.convert("RGB")
    scale = side / max(rgb.size)
    rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=92)
    return out.getvalue()
