"""Decoding uploads that are broken, huge, animated, CMYK, 16-bit, transparent, rotated, HEIC or colour-managed.

Over 400 lines on purpose: one test per kind of upload people send, each small.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zlib

import numpy as np
import pillow_heif
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms
from support_images import (
    PNG_RGB,
    adobe_rgb_profile,
    adobe_rgb_to_srgb,
    encode,
    png_16bit_rgb,
    png_file,
)

from animegan.errors import AnimeganError, ImageTooLarge, UnsupportedImage
from animegan.images import (
    ANIMATED_NOTE,
    PROFILE_NOTE,
    DecodedImage,
    decode_image,
    encode_image,
    to_tensor,
    to_uint8,
)

NOT_AN_IMAGE = "That file is not an image I can read (JPEG, PNG, WebP, HEIC, GIF...)."
DAMAGED = "That image file is damaged or incomplete (perhaps cut off while uploading); please send it again."
ORIENTATION_TAG = 0x0112
ROTATE_90_CLOCKWISE = 6
JPEG_TOLERANCE = 6  # levels of 255 a flat colour may move through JPEG at quality 95
RED, GREEN, BLUE, WHITE = (220, 30, 40), (30, 200, 60), (20, 40, 210), (255, 255, 255)


def flat(colour: tuple[int, ...], size: tuple[int, int] = (32, 24), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def sample_photo(width: int = 64, height: int = 48) -> Image.Image:
    """Four flat quadrants, red, green, blue and white: easy to find again after any transform."""
    pixels = np.empty((height, width, 3), np.uint8)
    half_h, half_w = height // 2, width // 2
    pixels[:half_h, :half_w], pixels[:half_h, half_w:] = RED, GREEN
    pixels[half_h:, :half_w], pixels[half_h:, half_w:] = BLUE, WHITE
    return Image.fromarray(pixels)


def assert_colour(decoded: DecodedImage, expected: tuple[int, ...], tolerance: int = 0) -> None:
    centre = decoded.rgb[decoded.height // 2, decoded.width // 2].astype(int)
    assert np.abs(centre - np.array(expected)).max() <= tolerance, (centre, expected)


# --- bad inputs -----------------------------------------------------------------------------------------------


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnsupportedImage) as caught:
        decode_image(b"Hello! Here is my holiday photo, can you make it anime?")
    assert caught.value.message == NOT_AN_IMAGE


def test_zero_bytes_is_empty() -> None:
    with pytest.raises(UnsupportedImage) as caught:
        decode_image(b"")
    assert caught.value.message == "That file is empty: there is no image in it."


def test_a_format_we_do_not_accept_is_not_an_image() -> None:
    # Pillow could read it, but PSD/EPS/ICO... are attack surface nobody needs for a photo bot.
    with pytest.raises(UnsupportedImage) as caught:
        decode_image(encode(sample_photo(), "ICO"))
    assert caught.value.message == NOT_AN_IMAGE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_truncated_file_is_damaged(fmt: str) -> None:
    whole = encode(Image.effect_noise((96, 96), 64).convert("RGB"), fmt)
    decode_image(whole)  # the file itself is fine
    with pytest.raises(UnsupportedImage) as caught:
        decode_image(whole[: len(whole) // 2])
    assert caught.value.message == DAMAGED


def test_a_file_over_max_bytes_is_too_large() -> None:
    data = encode(Image.effect_noise((200, 200), 64).convert("RGB"), "PNG")
    assert len(data) > 100_000
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data, max_bytes=50_000)
    assert caught.value.message == f"That file is too large: {len(data) / 1e6:.2g} MB; the limit is 0.05 MB."


def test_a_header_claiming_30000_by_30000_is_rejected_before_decoding() -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    # 2.7 GB of pixels promised, 20 bytes of compressed data given: decoding would fail as truncated instead.
    bomb = png_file(30_000, 30_000, 8, PNG_RGB, zlib.compress(bytes(1000)))
    assert len(bomb) < 100
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(bomb)
    assert time.perf_counter() - started < 1.0
    assert caught.value.message == "That image is too large: 900 megapixels; the limit is 50."
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_our_pixel_limit_applies_below_pillows_own() -> None:
    # 81 megapixels: under Pillow's warning threshold (~89), over our default limit of 50.
    claimed = png_file(9_000, 9_000, 8, PNG_RGB, zlib.compress(bytes(1000)))
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(claimed)
    assert caught.value.message == "That image is too large: 81 megapixels; the limit is 50."


def test_a_real_image_over_a_small_max_pixels_is_too_large() -> None:
    data = encode(sample_photo(100, 80), "PNG")
    assert decode_image(data, max_pixels=8_000).width == 100  # exactly at the limit is fine
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data, max_pixels=5_000)
    assert caught.value.message == "That image is too large: 0.008 megapixels; the limit is 0.005."


# --- animations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "params"), [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})])
def test_an_animation_gives_its_first_frame_and_a_note(fmt: str, params: dict[str, object]) -> None:
    frames = [flat(RED), flat(GREEN), flat(BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)
    decoded = decode_image(data)
    assert decoded.notes == (ANIMATED_NOTE,)
    assert decoded.rgb.shape == (24, 32, 3)
    # GIF stores a 256-colour palette, which may move a colour by a level or two.
    assert_colour(decoded, RED, tolerance=2 if fmt == "GIF" else 0)


def test_a_still_image_has_no_notes() -> None:
    decoded = decode_image(encode(sample_photo(), "PNG"))
    assert decoded.notes == () and decoded.source_format == "PNG"


# --- colour spaces and bit depths ----------------------------------------------------------------------------


def test_a_cmyk_jpeg_comes_back_close_to_the_rgb_original() -> None:
    data = encode(sample_photo().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = decode_image(data)
    assert decoded.source_format == "JPEG" and decoded.alpha is None
    reference = np.asarray(sample_photo()).astype(int)
    inner = (slice(4, 20), slice(4, 28))  # away from the quadrant edges JPEG blurs
    assert np.abs(decoded.rgb[inner].astype(int) - reference[inner]).max() <= JPEG_TOLERANCE


def test_a_16bit_grey_png_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 257, 25_700, 32_768, 65_535]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(levels), "PNG"))
    expected = np.round(levels / 257).astype(np.uint8)  # 0, 1, 100, 128, 255
    assert np.array_equal(decoded.rgb, np.repeat(expected[..., None], 3, axis=2))


def test_a_16bit_rgb_png_keeps_its_values() -> None:
    levels = np.array([[[0x4000, 0x8080, 0xFFFF], [0x0000, 0x1234, 0xC0C0]]], dtype=np.uint16)
    decoded = decode_image(png_16bit_rgb(levels))
    # Pillow keeps the high byte of each sample; the exact scaling is value / 257: at most one level apart.
    assert np.abs(decoded.rgb.astype(float) - levels / 257).max() <= 1.0
    assert decoded.rgb.tolist() == [[[64, 128, 255], [0, 18, 192]]]


# A big high-bit-depth image: 12 megapixels, enough for a whole-image float64 copy (8 bytes a pixel) to stand out.
BIG_WIDTH, BIG_HEIGHT = 4000, 3000
# The decoder's peak Python-side allocation (numpy arrays, bytes; tracemalloc sees both) over the size of its 8-bit
# RGB result. Any 8-bit photo peaks at 2x (Pillow's bytes of the result and numpy's array of them); a high-bit one
# adds its 8-bit grey (1/3) and a band of rows in flight: 2.4x measured. One float64 copy of the whole image is
# 8 bytes a pixel, 2.7x on its own (before the fix: 6.3x for 16-bit, 7x for float).
HIGH_BIT_PEAK_RATIO = 3


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("F", "TIFF")])
def test_a_big_high_bit_depth_image_is_converted_in_bounded_memory(mode: str, fmt: str) -> None:
    """Issue 20, point 11: 16-bit and float images went through float64 copies of the whole image."""
    columns = np.arange(BIG_WIDTH)
    if mode == "F":
        row = (columns / (BIG_WIDTH - 1)).astype(np.float32)  # 0..1
    else:
        row = (columns * 65535 // (BIG_WIDTH - 1)).astype(np.uint16)  # 0..65535
    source = Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (BIG_HEIGHT, BIG_WIDTH))))
    assert source.mode == mode
    data = encode(source, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    del source
    tracemalloc.start()
    try:
        decoded = decode_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.rgb.shape == (BIG_HEIGHT, BIG_WIDTH, 3)
    expected = np.round(np.clip(row.astype(np.float64) / (1.0 if mode == "F" else 65535), 0, 1) * 255)
    assert np.array_equal(decoded.rgb[BIG_HEIGHT // 2, :, 0], expected.astype(np.uint8))
    assert np.array_equal(decoded.rgb[-1], decoded.rgb[0])
    result_bytes = BIG_WIDTH * BIG_HEIGHT * 3
    assert peak < HIGH_BIT_PEAK_RATIO * result_bytes, f"peak {peak / 1e6:.0f} MB, result {result_bytes / 1e6:.0f} MB"


@pytest.mark.parametrize("mode", ["L", "1", "P", "YCbCr", "LAB"])
def test_other_modes_become_rgb(mode: str) -> None:
    source = flat(WHITE, mode="RGB").convert(mode)
    data = encode(source, "TIFF")
    decoded = decode_image(data)
    assert decoded.rgb.shape == (24, 32, 3) and decoded.rgb.dtype == np.uint8
    assert_colour(decoded, WHITE, tolerance=1)


def test_an_icc_profile_is_converted_to_srgb() -> None:
    adobe = np.array([[[100, 180, 100], [200, 50, 50], [40, 60, 200], [128, 128, 128]]], dtype=np.uint8)
    expected = adobe_rgb_to_srgb(adobe)
    # The profile makes a difference a decoder ignoring it would fail on.
    assert np.abs(expected - adobe).max() > 50
    decoded = decode_image(encode(Image.fromarray(adobe), "PNG", icc_profile=adobe_rgb_profile()))
    assert decoded.notes == ()
    assert np.abs(decoded.rgb - expected).max() <= 1.5


def test_an_srgb_profile_leaves_the_pixels_alone() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = np.asarray(sample_photo())
    decoded = decode_image(encode(Image.fromarray(rgb), "PNG", icc_profile=srgb))
    assert decoded.notes == () and np.array_equal(decoded.rgb, rgb)


def test_decoded_pixels_are_read_only() -> None:
    decoded = decode_image(encode(sample_photo(), "PNG"))
    with pytest.raises(ValueError, match="read-only"):
        decoded.rgb[0, 0] = 0


def test_an_unreadable_icc_profile_is_ignored_with_a_note() -> None:
    decoded = decode_image(encode(flat(RED), "PNG", icc_profile=b"this is not a colour profile" * 8))
    assert decoded.notes == (PROFILE_NOTE,)
    assert_colour(decoded, RED)


# --- transparency --------------------------------------------------------------------------------------------


def rgba_sample() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(sample_photo()).copy()
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :16] = 0
    alpha[:, 16:32] = 128
    return rgb, alpha


def test_an_rgba_png_keeps_its_alpha_through_decode_and_png_encode() -> None:
    rgb, alpha = rgba_sample()
    decoded = decode_image(encode(Image.fromarray(np.dstack([rgb, alpha])), "PNG"))
    assert np.array_equal(decoded.rgb, rgb) and np.array_equal(decoded.alpha, alpha)
    data, mime = encode_image(decoded.rgb, decoded.alpha)
    assert mime == "image/png"
    again = decode_image(data)
    assert np.array_equal(again.rgb, rgb) and np.array_equal(again.alpha, alpha)


def test_webp_encode_keeps_alpha() -> None:
    rgb, alpha = rgba_sample()
    data, mime = encode_image(rgb, alpha, "webp")
    assert mime == "image/webp"
    decoded = decode_image(data)
    assert decoded.source_format == "WEBP" and np.array_equal(decoded.alpha, alpha)


def test_jpeg_encode_flattens_alpha_on_white() -> None:
    rgb, alpha = rgba_sample()
    data, mime = encode_image(rgb, alpha, "jpeg", quality=95)
    assert mime == "image/jpeg"
    decoded = decode_image(data)
    assert decoded.alpha is None
    red = np.array(RED)
    # Transparent red is white; half-transparent red is halfway to white; opaque green stays green.
    for column, expected in [(8, WHITE), (24, (red * 128 + 255 * 127) / 255), (40, GREEN)]:
        assert np.abs(decoded.rgb[6, column].astype(int) - np.array(expected)).max() <= JPEG_TOLERANCE


def test_a_fully_opaque_alpha_counts_as_none() -> None:
    rgb, _ = rgba_sample()
    decoded = decode_image(encode(Image.fromarray(rgb).convert("RGBA"), "PNG"))
    assert decoded.alpha is None and np.array_equal(decoded.rgb, rgb)


def test_a_palette_png_with_a_transparent_index() -> None:
    palette = [0, 0, 0, *RED, *GREEN] + [0] * (256 - 3) * 3
    indices = np.zeros((24, 32), np.uint8)
    indices[:, 10:20], indices[:, 20:] = 1, 2
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    decoded = decode_image(encode(image, "PNG", transparency=0))
    assert decoded.alpha is not None
    assert (decoded.alpha[:, :10] == 0).all() and (decoded.alpha[:, 10:] == 255).all()
    assert decoded.rgb[5, 15].tolist() == list(RED) and decoded.rgb[5, 25].tolist() == list(GREEN)


def test_grey_with_alpha() -> None:
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (4, 1))
    alpha = np.full_like(grey, 200)
    decoded = decode_image(encode(Image.fromarray(np.dstack([grey, alpha]), mode="LA"), "PNG"))
    assert np.array_equal(decoded.rgb, np.repeat(grey[..., None], 3, axis=2))
    assert np.array_equal(decoded.alpha, alpha)


# --- orientation and HEIC ------------------------------------------------------------------------------------


def rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = ROTATE_90_CLOCKWISE
    return exif.tobytes()


def assert_turned_clockwise(decoded: DecodedImage) -> None:
    """sample_photo(64, 48) turned a quarter clockwise: red top-right, blue top-left, white bottom-left."""
    assert decoded.rgb.shape == (64, 48, 3)
    for (row, column), colour in [((8, 40), RED), ((8, 8), BLUE), ((56, 40), GREEN), ((56, 8), WHITE)]:
        assert np.abs(decoded.rgb[row, column].astype(int) - np.array(colour)).max() <= JPEG_TOLERANCE


def test_exif_orientation_6_is_applied() -> None:
    data = encode(sample_photo(64, 48), "JPEG", quality=95, exif=rotated_exif())
    decoded = decode_image(data)
    assert_turned_clockwise(decoded)
    as_stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(decoded.rgb, np.rot90(as_stored, k=-1))


@pytest.fixture(scope="module")
def heic_photo() -> bytes:
    try:
        return encode(sample_photo(), "HEIF", quality=95, exif=rotated_exif())
    except (ValueError, RuntimeError, OSError, KeyError) as error:
        pytest.skip(f"the installed pillow-heif {pillow_heif.__version__} cannot encode HEIC: {error}")


def test_a_heic_photo_is_read_upright(heic_photo: bytes) -> None:
    decoded = decode_image(heic_photo)
    assert decoded.source_format == "HEIF" and decoded.notes == ()
    assert_turned_clockwise(decoded)


def test_an_avif_photo_is_read_when_pillow_has_avif() -> None:
    try:
        data = encode(sample_photo(), "AVIF", quality=95, exif=rotated_exif())
    except (KeyError, OSError, ValueError) as error:
        pytest.skip(f"this Pillow cannot encode AVIF: {error}")
    decoded = decode_image(data)
    assert decoded.source_format == "AVIF"
    assert_turned_clockwise(decoded)


# --- encode and the tensor helpers ---------------------------------------------------------------------------


def test_encode_picks_jpeg_without_alpha() -> None:
    data, mime = encode_image(np.asarray(sample_photo()), None)
    assert mime == "image/jpeg" and decode_image(data).source_format == "JPEG"


def test_encode_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt"):
        encode_image(np.asarray(sample_photo()), None, "bmp")


def test_to_tensor_and_back_is_lossless() -> None:
    rgb = np.asarray(sample_photo())
    tensor = to_tensor(rgb)
    assert tensor.shape == (1, 3, 48, 64) and tensor.dtype == torch.float32
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([c / 255 for c in RED])
    assert np.array_equal(to_uint8(tensor), rgb)


def test_to_uint8_rounds_and_clamps() -> None:
    values = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.6 / 255, 0.5, 1.0, 7.0]).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert to_uint8(values)[0, :, 0].tolist() == [0, 0, 0, 2, 128, 255, 255]


# --- never anything but our errors ---------------------------------------------------------------------------

VALID_FILES = {
    "PNG": encode(sample_photo(), "PNG"),
    "JPEG": encode(sample_photo(), "JPEG"),
    "GIF": encode(sample_photo(), "GIF"),
    "WEBP": encode(sample_photo(), "WEBP"),
    "TIFF": encode(sample_photo(), "TIFF"),
}
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Pillow warns about the junk it skips over; only exceptions matter here.
QUIET = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")


def decode_or_our_error(data: bytes) -> None:
    try:
        decoded = decode_image(data, max_pixels=1_000_000)
    except AnimeganError as error:
        assert error.message.endswith(".")
        return
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3


@QUIET
@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_our_errors(data: bytes) -> None:
    decode_or_our_error(data)


@QUIET
@FUZZ
@given(st.sampled_from(sorted(VALID_FILES)), st.data())
def test_truncated_files_raise_only_our_errors(fmt: str, data: st.DataObject) -> None:
    whole = VALID_FILES[fmt]
    decode_or_our_error(whole[: data.draw(st.integers(0, len(whole) - 1))])


@QUIET
@FUZZ
@given(st.sampled_from(sorted(VALID_FILES)), st.data())
def test_corrupted_files_raise_only_our_errors(fmt: str, data: st.DataObject) -> None:
    damaged = bytearray(VALID_FILES[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    decode_or_our_error(bytes(damaged))


def test_big_photo_is_decoded_at_a_reduced_scale_that_still_covers_min_side() -> None:
    import io

    from PIL import Image

    from animegan.images import decode_image

    for fmt in ("JPEG", "PNG"):
        buffer = io.BytesIO()
        Image.linear_gradient("L").resize((4000, 3000)).convert("RGB").save(buffer, fmt)
        full = decode_image(buffer.getvalue())
        reduced = decode_image(buffer.getvalue(), min_side=900)
        assert full.rgb.shape == (3000, 4000, 3)
        assert 900 <= max(reduced.rgb.shape) <= 2000, (fmt, reduced.rgb.shape)
        assert abs(reduced.rgb.shape[1] / reduced.rgb.shape[0] - 4 / 3) < 0.01
