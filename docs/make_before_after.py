"""Make docs/before_after.jpg, the README's picture, with the project itself: photo left, Shinkai style right.

python docs/make_before_after.py   (needs the shinkai weights: animebot weights pull shinkai)
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from animegan.engine import Engine

DOCS = Path(__file__).resolve().parent
EXAMPLES = DOCS.parent / "examples"
PHOTOS = ("astronaut.jpg", "rocket.jpg")
IMAGE_WIDTH = 480


def main() -> None:
    engine = Engine(working_size=768)
    rows = []
    for name in PHOTOS:
        data = (EXAMPLES / name).read_bytes()
        before = Image.open(io.BytesIO(data)).convert("RGB")
        after = Image.open(io.BytesIO(engine.stylize_bytes(data, "shinkai", output_format="png").data))
        height = round(before.height * IMAGE_WIDTH / before.width)
        rows.append([image.resize((IMAGE_WIDTH, height), Image.Resampling.LANCZOS) for image in (before, after)])
    canvas = Image.new("RGB", (2 * IMAGE_WIDTH, sum(before.height for before, _ in rows)), "white")
    top = 0
    for before, after in rows:
        canvas.paste(before, (0, top))
        canvas.paste(after, (IMAGE_WIDTH, top))
        top += before.height
    canvas.save(DOCS / "before_after.jpg", quality=88)


if __name__ == "__main__":
    main()
