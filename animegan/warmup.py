"""What a process runs once before its first real photo, so that photo is not the one paying for first uses.

Measured on a fresh worker after ``Engine.load()`` (1 thread, 1024 px face photos): the first photo took 2.5-4.4 s
against 0.7-1.0 s for the next ones. It paid for importing facenet-pytorch (2.2 s: torchvision pulls in
torch._dynamo), MTCNN's first detection, OpenVINO's first inference at a full-size shape (about 0.9 s: a compiled
model allocates its buffers for the largest shape it has seen, so a tiny inference does not pay it), and Pillow's
first decode and encode. A square photo at the working size allocates the largest buffers any photo will need, so
every later shape finds them ready.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from animegan.quantize import default_calibration_dir

WARM_UP_PORTRAIT = "portrait_man_talking.jpg"  # a licensed one-face photo that ships with animegan
WARM_UP_JPEG_QUALITY = 90
TINY_SIDE = 64  # other styles are only loaded and run once at this size (no full-size buffers held for them)


def warm_up_photo(side: int) -> bytes:
    """A ``side`` x ``side`` JPEG with one face: the shipped portrait's centre square, else a plain gradient."""
    path = default_calibration_dir() / WARM_UP_PORTRAIT
    if path.is_file():
        with Image.open(path) as photo:
            rgb = photo.convert("RGB")
        crop = min(rgb.size)
        left, top = (rgb.width - crop) // 2, (rgb.height - crop) // 2
        square = rgb.crop((left, top, left + crop, top + crop)).resize((side, side), Image.Resampling.BICUBIC)
    else:
        ramp = np.linspace(0, 255, side, dtype=np.uint8)
        square = Image.fromarray(np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), -1))
    out = io.BytesIO()
    square.save(out, "JPEG", quality=WARM_UP_JPEG_QUALITY)
    return out.getvalue()
