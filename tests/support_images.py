"""Image files built byte by byte for the decoding tests: hand-made PNGs and an Adobe-RGB-like ICC profile."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GREY = 0
PNG_RGB = 2
PNG_NO_FILTER = b"\x00"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_file(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    """A PNG with the given header and an IDAT holding ``idat`` as it is (already compressed)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (which Pillow cannot write) of ``pixels``: uint16, shape (H, W, 3)."""
    height, width, _ = pixels.shape
    rows = b"".join(PNG_NO_FILTER + row.astype(">u2").tobytes() for row in pixels)
    return png_file(width, height, 16, PNG_RGB, zlib.compress(rows))


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


# --- an Adobe RGB (1998)-like ICC profile -------------------------------------------------------------------

ADOBE_GAMMA = 563 / 256  # exactly representable as the profile's u8Fixed8 gamma
ADOBE_RGB_TO_XYZ_D65 = np.array(
    [[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741], [0.0270343, 0.0706872, 0.9911085]]
)
SRGB_TO_XYZ_D65 = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D65 = np.array([0.95047, 1.0, 1.08883])
D50 = np.array([0.9642, 1.0, 0.8249])  # the ICC profile connection space's white


def _s15fixed16(values: np.ndarray) -> bytes:
    return b"".join(struct.pack(">i", round(float(v) * 65536)) for v in values)


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ " + bytes(4) + _s15fixed16(xyz)


def _gamma_tag(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _description_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\x00"
    # ICC v2 textDescriptionType: ASCII, then empty Unicode and ScriptCode parts.
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def adobe_rgb_profile() -> bytes:
    """An ICC v2 matrix/TRC display profile with Adobe RGB (1998) primaries and gamma 563/256."""
    d65_to_d50 = np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ D50) / (BRADFORD @ D65)) @ BRADFORD
    colorants = d65_to_d50 @ ADOBE_RGB_TO_XYZ_D65  # columns are the red, green, blue colorants in PCS
    gamma = _gamma_tag(ADOBE_GAMMA)
    tags = [
        (b"desc", _description_tag("Adobe RGB (1998)-like test profile")),
        (b"wtpt", _xyz_tag(D50)),
        (b"rXYZ", _xyz_tag(colorants[:, 0])),
        (b"gXYZ", _xyz_tag(colorants[:, 1])),
        (b"bXYZ", _xyz_tag(colorants[:, 2])),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
        (b"cprt", b"text" + bytes(4) + b"No copyright, test data\x00"),
    ]
    header_size, entry_size = 128, 12
    offset = header_size + 4 + entry_size * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += _pad4(data)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)  # preferred CMM
        + struct.pack(">I", 0x02100000)  # version 2.1
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + bytes(12)  # date
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8)  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15fixed16(D50)
        + bytes(4 + 16 + 28)  # creator, profile id, reserved
    )
    assert len(header) == header_size
    return header + table + body


def adobe_rgb_to_srgb(pixels: np.ndarray) -> np.ndarray:
    """The reference conversion, from the published matrices: uint8 Adobe RGB (..., 3) to float sRGB 0..255."""
    linear = (pixels / 255.0) ** ADOBE_GAMMA
    srgb_linear = np.clip(linear @ (np.linalg.inv(SRGB_TO_XYZ_D65) @ ADOBE_RGB_TO_XYZ_D65).T, 0.0, 1.0)
    encoded = np.where(srgb_linear <= 0.0031308, 12.92 * srgb_linear, 1.055 * srgb_linear ** (1 / 2.4) - 0.055)
    return encoded * 255.0
