"""Stickers from pictures: a WEBP whose long side is exactly 512 px, what Telegram's static stickers must be (and
a handy size for Discord and the web too), under Telegram's 512 KB limit."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

STICKER_SIDE = 512
STICKER_MAX_BYTES = 512 * 1024
STICKER_QUALITIES = (90, 80, 70, 60, 50)  # tried in turn until the file fits
STICKER_MIME = "image/webp"


def sticker_webp(image: bytes) -> bytes:
    """``image`` (any format Pillow reads) as a sticker: WEBP, long side 512 px, aspect kept, at most 512 KB.

    Raises ``ValueError`` when the bytes are not an image.
    """
    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGBA")
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"not an image: {error}") from error
    scale = STICKER_SIDE / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.LANCZOS)
    for quality in STICKER_QUALITIES:
        out = io.BytesIO()
        picture.save(out, "WEBP", quality=quality, method=4)
        if out.tell() <= STICKER_MAX_BYTES:
            break
    return out.getvalue()
