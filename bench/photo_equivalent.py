"""What a clip frame costs against a photo, for the daily budget's photo equivalents (``bot/budgets.py``).

Side by side in one process, with the service's default engine settings (precision auto, faces on, photos drawn at
1024 px with the scene at 512 px, clips at 512 px): the example photos enlarged to a phone's 2000 px (each drawn at
the 1024 px working size), and a 4 s clip of 640x480 at 12 fps (48 frames: plan, chunk and join all counted).
Prints ms per photo, ms per clip frame and frames per photo (the constant ``FRAMES_PER_PHOTO`` is based on), with
the spread over the runs.

    flock /tmp/animebot-bench.lock .venv/bin/python bench/photo_equivalent.py
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from animegan.engine import Engine
from tests.support_clips import example, make_mp4, pan_frames

PHOTO_SIDE = 2000
PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
CLIP_SIZE, CLIP_FPS, CLIP_FRAMES = (640, 480), 12, 48
RUNS = 3


def phone_photo(name: str) -> bytes:
    """An example photo enlarged to ``PHOTO_SIDE`` on its long side, as a JPEG."""
    image = Image.fromarray(example(name))
    scale = PHOTO_SIDE / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def main() -> None:
    engine = Engine()
    engine.load()
    photos = [phone_photo(name) for name in PHOTOS]
    clip = make_mp4(pan_frames(example("astronaut.jpg"), CLIP_SIZE, CLIP_FRAMES, step=2), CLIP_FRAMES, CLIP_FPS)
    engine.stylize_bytes(photos[0])  # warm-up: compile caches, first-call costs
    engine.stylize_clip_bytes(clip)
    photo_ms: list[float] = []
    frame_ms: list[float] = []
    for _ in range(RUNS):
        for photo in photos:
            began = time.perf_counter()
            engine.stylize_bytes(photo)
            photo_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        engine.stylize_clip_bytes(clip)
        frame_ms.append((time.perf_counter() - began) * 1000 / CLIP_FRAMES)
    per_photo, per_frame = statistics.median(photo_ms), statistics.median(frame_ms)
    photo_spread = f"{min(photo_ms):.0f}-{max(photo_ms):.0f}"
    print(f"photo ({PHOTO_SIDE} px sent, drawn at 1024 px): median {per_photo:.0f} ms, {photo_spread}")
    print(
        f"clip frame (512 px, whole clip / frames): median {per_frame:.0f} ms, {min(frame_ms):.0f}-{max(frame_ms):.0f}"
    )
    lowest, highest = min(photo_ms) / max(frame_ms), max(photo_ms) / min(frame_ms)
    print(f"frames per photo: median {per_photo / per_frame:.2f}, {lowest:.2f}-{highest:.2f}")


if __name__ == "__main__":
    main()
