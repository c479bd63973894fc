"""Image files in and out of the engine: any upload decoded safely to sRGB arrays, results encoded back.

``decode_image`` turns bytes from a stranger into an (H, W, 3) sRGB array plus an optional alpha mask, or raises
:class:`~animegan.errors.UnsupportedImage` / :class:`~animegan.errors.ImageTooLarge` with a sentence for the
person; no other exception leaves it for any input bytes. ``encode_image`` writes the result, and ``to_tensor``
/ ``to_uint8`` cross between arrays and the engine's tensors.

torch is imported only inside the two tensor helpers, so the service can decode and check uploads cheaply.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

from animegan.errors import AnimeganError, ImageTooLarge, UnsupportedImage, sentence

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_QUALITY = 92
PIXELS_PER_MEGAPIXEL = 1_000_000
BYTES_PER_MEGABYTE = 1_000_000
MAX_8BIT = 255
MAX_16BIT = 65535
OPAQUE = MAX_8BIT

# Only formats people actually send. Pillow can open many more (EPS even runs Ghostscript); each one is attack
# surface for no gain. AVIF is read by Pillow itself when built with libavif, HEIF by pillow-heif.
WANTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "TIFF", "BMP")
# Formats whose extra frames are an animation (elsewhere they are separate pictures).
ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
# Pillow names a camera JPEG that carries extra pictures (a preview, a stereo pair) "MPO"; to the person it is a
# JPEG, and its extra pictures are not frames they chose.
FORMAT_NAMES = {"MPO": "JPEG"}
# Pixels of one band of rows converted at a time from a high bit depth: 8 MB as float64, whatever the image.
HIGH_BIT_BAND_PIXELS = 1 << 20
HIGH_BIT_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I;16LS", "I;16BS", "I;16NS"})
SRGB_DESCRIPTION_PREFIX = "sRGB"  # "sRGB IEC61966-2.1", "sRGB built-in"...
# The Pillow mode a colour profile's space applies to.
PROFILE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}

EMPTY = sentence("That file is empty: there is no image in it.")
NOT_AN_IMAGE = sentence("That file is not an image I can read (JPEG, PNG, WebP, HEIC, GIF...).")
DAMAGED = sentence("That image file is damaged or incomplete (perhaps cut off while uploading); please send it again.")
NO_MEMORY = sentence("That image is too large to open here.")
ANIMATED_NOTE = sentence("This is an animated image: only its first frame was used.")
SEVERAL_PICTURES_NOTE = sentence("This file holds several pictures: only the first was used.")
PROFILE_NOTE = sentence("Its colour profile could not be used, so its colours were taken as they are.")

MIME_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
FORMAT_ALIASES = {"jpg": "jpeg"}

pillow_heif.register_heif_opener()
REDUCIBLE_MODES = frozenset({"RGB", "RGBA", "L", "LA"})


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload.

    Attributes:
        rgb: sRGB pixels, uint8, shape (H, W, 3), orientation already applied; read-only.
        alpha: transparency, uint8, shape (H, W), 0 = transparent, read-only; None when the image has none (an
            alpha channel that is opaque everywhere counts as none).
        source_format: Pillow's name of the file format ("JPEG", "PNG", "HEIF", "WEBP", "GIF", ...).
        notes: plain sentences for the person about what was done (e.g. only the first frame was used).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source_format: str
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None, min_side: int | None = None
) -> DecodedImage:
    """Decode an uploaded image to sRGB, whatever its format, orientation, colour profile or bit depth.

    EXIF orientation is applied; an ICC profile is converted to sRGB; CMYK, 16-bit, palette, grey and 1-bit images
    become RGB; transparency is returned separately; animations give their first frame and a note. The pixel
    count from the file's header is checked against ``max_pixels`` before any pixel is decoded (Pillow's own
    decompression-bomb guard still applies on top).

    Args:
        data: the file's bytes.
        max_pixels: largest width * height accepted.
        max_bytes: largest file accepted, or None for no limit.
        min_side: when set, a big image may be decoded at a reduced scale whose long side is still at least this
            (JPEG DCT scaling, else integer pixel binning): a 24-megapixel photo then never exists at full size.

    Returns:
        the decoded image.

    Raises:
        UnsupportedImage: empty, not an image, an unsupported format, damaged or truncated.
        ImageTooLarge: more than ``max_bytes`` bytes or ``max_pixels`` pixels.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if not data:
        raise UnsupportedImage(EMPTY)
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLarge(
            f"That file is too large: {_amount(len(data) / BYTES_PER_MEGABYTE)} MB; "
            f"the limit is {_amount(max_bytes / BYTES_PER_MEGABYTE)} MB."
        )
    try:
        with Image.open(io.BytesIO(data), formats=_readable_formats()) as image:
            _check_pixel_count(image.width * image.height, max_pixels)
            source_format = FORMAT_NAMES.get(image.format or "", image.format or "unknown")
            frame_note = _frame_note(image)
            if min_side is not None:
                _draft(image, min_side)
            image.load()
            frame = image if min_side is None else _reduce(image, min_side)
            rgb, alpha, colour_notes = _to_srgb(frame)
    except AnimeganError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(_too_many_pixels(_pixels_in(error), _effective_limit(max_pixels))) from error
    except UnidentifiedImageError as error:
        raise UnsupportedImage(NOT_AN_IMAGE) from error
    except MemoryError as error:
        raise ImageTooLarge(NO_MEMORY) from error
    except Exception as error:
        # Pillow's decoders report corrupt or cut-off data with whichever built-in type the failing step raises
        # (OSError, EOFError, SyntaxError, ValueError, struct.error, zlib.error, IndexError...): once the format
        # is identified, any of them means the file is damaged.
        raise UnsupportedImage(DAMAGED) from error
    notes = tuple(note for note in (frame_note, *colour_notes) if note)
    return DecodedImage(rgb=rgb, alpha=alpha, source_format=source_format, notes=notes)


def encode_image(
    rgb: np.ndarray, alpha: np.ndarray | None, fmt: str | None = None, quality: int = DEFAULT_QUALITY
) -> tuple[bytes, str]:
    """Encode sRGB pixels (and transparency) to a file.

    Args:
        rgb: uint8, shape (H, W, 3).
        alpha: uint8, shape (H, W), or None.
        fmt: "jpeg" (or "jpg"), "png" or "webp"; None picks png when there is alpha, jpeg otherwise.
        quality: JPEG/WebP quality, 1-100 (ignored by png).

    Returns:
        (file bytes, MIME type). PNG and WebP keep the alpha; JPEG has none, so the image is flattened on white.
    """
    _check_rgb(rgb)
    if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]):
        raise ValueError(f"alpha must be uint8 of shape {rgb.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    chosen = (fmt or ("png" if alpha is not None else "jpeg")).lower()
    chosen = FORMAT_ALIASES.get(chosen, chosen)
    if chosen not in MIME_TYPES:
        raise ValueError(f"fmt must be one of {sorted(MIME_TYPES)}, got {fmt!r}")
    if alpha is None:
        image = Image.fromarray(rgb)
    elif chosen == "jpeg":
        image = Image.fromarray(_flatten_on_white(rgb, alpha))
    else:
        image = Image.fromarray(np.dstack([rgb, alpha]))
    buffer = io.BytesIO()
    if chosen == "jpeg":
        # 4:4:4 chroma: anime output is flat saturated colour against sharp lines, which 4:2:0 smears.
        image.save(buffer, format="JPEG", quality=quality, optimize=True, subsampling="4:4:4")
    elif chosen == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue(), MIME_TYPES[chosen]


def to_tensor(rgb: np.ndarray) -> Tensor:
    """uint8 pixels (H, W, 3) to the engine's float tensor (1, 3, H, W) in [0, 1]."""
    import torch

    _check_rgb(rgb)
    pixels = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy())
    # Reorder the bytes first: converting through a strided view is ~1.5x slower.
    return pixels.permute(2, 0, 1).contiguous().to(torch.float32).div_(MAX_8BIT).unsqueeze(0)


def to_uint8(image: Tensor) -> np.ndarray:
    """The engine's float tensor (1, 3, H, W) to uint8 pixels (H, W, 3): clamped to [0, 1], then rounded."""
    import torch

    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a float tensor of shape (1, 3, H, W), got {image.dtype} {tuple(image.shape)}")
    scaled = image.detach()[0].clamp(0.0, 1.0).mul_(MAX_8BIT).round_().to(torch.uint8)
    return scaled.permute(1, 2, 0).contiguous().cpu().numpy()


# --- decoding steps -----------------------------------------------------------------------------------------


@functools.cache
def _readable_formats() -> tuple[str, ...]:
    Image.init()
    available = [name for name in WANTED_FORMATS if name in Image.OPEN]
    if "AVIF" in available and not features.check_module("avif"):
        available.remove("AVIF")
    return tuple(available)


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _check_pixel_count(pixels: int, max_pixels: int) -> None:
    if pixels < 1:
        raise UnsupportedImage(DAMAGED)
    if pixels > max_pixels:
        raise ImageTooLarge(_too_many_pixels(pixels, max_pixels))


def _too_many_pixels(pixels: int, limit: int) -> str:
    return (
        f"That image is too large: {_amount(pixels / PIXELS_PER_MEGAPIXEL)} megapixels; "
        f"the limit is {_amount(limit / PIXELS_PER_MEGAPIXEL)}."
    )


def _amount(value: float) -> str:
    """A size for a person: whole numbers from 10 up, two significant digits below ("64", "1.5", "0.008")."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _pixels_in(error: Image.DecompressionBombError) -> int:
    """The pixel count Pillow's message gives ("Image size (N pixels) exceeds..."), else its limit."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0)


def _effective_limit(max_pixels: int) -> int:
    """Our limit, or Pillow's error threshold when that is the lower one."""
    if Image.MAX_IMAGE_PIXELS is None:
        return max_pixels
    return min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)


def _frame_note(image: Image.Image) -> str | None:
    # is_animated, not n_frames: counting a GIF's frames means reading the whole file.
    if not getattr(image, "is_animated", False) or image.format == "MPO":
        return None
    return ANIMATED_NOTE if image.format in ANIMATED_FORMATS else SEVERAL_PICTURES_NOTE


def _draft(image: Image.Image, min_side: int) -> None:
    """Ask the JPEG decoder for the smallest DCT scale (1/2, 1/4, 1/8) whose long side stays >= ``min_side``."""
    longest = max(image.size)
    if image.format == "JPEG" and longest > min_side:
        image.draft(image.mode, (image.width * min_side // longest, image.height * min_side // longest))


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Bin pixels by the largest integer factor that keeps the long side >= ``min_side`` (modes Pillow can bin)."""
    factor = max(image.size) // min_side
    if factor < 2 or image.mode not in REDUCIBLE_MODES:
        return image
    reduced = image.reduce(factor)
    reduced.info = image.info  # keeps the ICC profile and EXIF orientation
    reduced.format = image.format
    return reduced


def _to_srgb(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """A loaded frame to (rgb (H, W, 3), alpha (H, W) or None, notes): upright, 8-bit, sRGB."""
    profile = image.info.get("icc_profile")
    ImageOps.exif_transpose(image, in_place=True)  # in place: a 12-megapixel copy costs ~70 ms
    if image.mode in HIGH_BIT_MODES:
        colour, alpha = _high_bit_to_grey(image)
    else:
        colour, alpha = _split_alpha(image)
    if colour.mode == "1":
        colour = colour.convert("L")
    elif colour.mode not in PROFILE_MODES.values():
        colour = colour.convert("RGB")
    notes = []
    if profile:
        colour, converted = _apply_profile(colour, profile)
        if not converted:
            notes.append(PROFILE_NOTE)
    # asarray: read-only views, one copy fewer than np.array (~100 ms per 12 megapixels).
    rgb = np.asarray(colour if colour.mode == "RGB" else colour.convert("RGB"))
    alpha_pixels = None if alpha is None else np.asarray(alpha)
    if alpha_pixels is not None and alpha_pixels.min() == OPAQUE:
        alpha_pixels = None
    return rgb, alpha_pixels, notes


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(colour without alpha, alpha as mode "L" or None). Grey stays grey so a grey colour profile still fits."""
    if image.mode == "LA":
        return image.getchannel("L"), image.getchannel("A")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return image, None


def _high_bit_to_grey(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """16/32-bit integer or float grey to 8-bit "L", scaled (Pillow's own convert clips at 255).

    Integer modes are read as 16-bit (0..65535, as PNG and TIFF store them); float ("F") as 0..1. The image is
    converted a band of rows at a time into the 8-bit result, so a 50-megapixel image never exists as floats
    (a whole float64 copy would be 400 MB, and the arithmetic makes several).
    """
    width, height = image.size
    grey = np.empty((height, width), np.uint8)
    transparent = image.info.get("transparency")
    alpha = np.empty((height, width), np.uint8) if isinstance(transparent, int) else None
    full_scale = 1.0 if image.mode == "F" else MAX_16BIT
    rows = max(1, HIGH_BIT_BAND_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        values = np.asarray(image.crop((0, top, width, bottom)))
        scaled = values.astype(np.float64)
        scaled /= full_scale
        np.clip(scaled, 0.0, 1.0, out=scaled)
        scaled *= MAX_8BIT
        np.round(scaled, out=scaled)
        grey[top:bottom] = scaled
        if alpha is not None:
            alpha[top:bottom] = np.where(values == transparent, 0, OPAQUE)
    return Image.fromarray(grey), None if alpha is None else Image.fromarray(alpha)


def _apply_profile(colour: Image.Image, icc: bytes) -> tuple[Image.Image, bool]:
    """Convert from an embedded ICC profile to sRGB; (the image, whether it was converted)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        # Most Android and camera JPEGs embed plain sRGB: converting it to itself costs ~0.5 s per 12 megapixels.
        if (profile.profile.profile_description or "").startswith(SRGB_DESCRIPTION_PREFIX):
            return colour, True
        mode = PROFILE_MODES.get(profile.profile.xcolor_space.strip())
        if mode == "RGB" and colour.mode == "L":
            colour = colour.convert("RGB")
        if mode != colour.mode:
            return colour, False
        converted = ImageCms.profileToProfile(
            colour,
            profile,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return colour, False
    assert converted is not None  # profileToProfile returns None only with inPlace=True
    return converted, True


# --- encoding steps -----------------------------------------------------------------------------------------


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"rgb must be a uint8 array of shape (H, W, 3), got {got}")


def _flatten_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over white, rounded: ``(rgb * a + 255 * (255 - a)) / 255``."""
    weight = alpha.astype(np.uint32)[..., None]
    blended = rgb.astype(np.uint32) * weight + MAX_8BIT * (MAX_8BIT - weight)
    return ((blended + MAX_8BIT // 2) // MAX_8BIT).astype(np.uint8)
