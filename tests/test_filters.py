"""The Shinkai filters on tensors whose answers are computed by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from kornia.color import rgb_to_lab
from torch import Tensor

from animegan.filters import (
    GLOW_THRESHOLD,
    GLOW_WEIGHT,
    SHINKAI_BLUE_GAIN,
    SHINKAI_CONTRAST_GAIN,
    SHINKAI_GREEN_GAIN,
    add_glow,
    blend,
    equalize_contrast,
    grade_colors,
    shinkai_finish,
    sigmoid_contrast,
)

BT601 = (0.299, 0.587, 0.114)
SIZE = 128  # large enough for CLAHE's 8x8 tiles to hold a meaningful histogram


def constant(rgb: tuple[float, float, float], size: int = 16, batch: int = 1) -> Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(batch, 3, size, size).contiguous()


def logistic_curve(x: float, gain: float) -> float:
    """The normalised sigmoid written independently: sigmoid(gain * logit(x))."""
    if x in (0.0, 1.0):
        return x
    logit = torch.logit(torch.tensor(x, dtype=torch.float64)).item()
    return torch.sigmoid(torch.tensor(gain * logit, dtype=torch.float64)).item()


def random_image(batch: int = 1, size: int = SIZE, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator)


def pixel(image: Tensor) -> list[float]:
    """The colour at the centre of a (1, 3, H, W) image."""
    _, _, height, width = image.shape
    return image[0, :, height // 2, width // 2].tolist()


FILTERS: dict[str, Callable[..., Tensor]] = {
    "equalize_contrast": equalize_contrast,
    "grade_colors": grade_colors,
    "add_glow": add_glow,
    "shinkai_finish": shinkai_finish,
}


# --- grade_colors -------------------------------------------------------------------------------------------


def test_grade_multiplies_blue_and_green_in_rgb_order() -> None:
    graded = grade_colors(constant((0.5, 0.4, 0.6)), contrast_gain=1.0)
    assert pixel(graded) == pytest.approx([0.5, 0.4 * 1.05, 0.6 * 1.1], abs=1e-6)


def test_grade_multiplies_the_real_blue_channel_in_bgr_order() -> None:
    graded = grade_colors(constant((0.6, 0.4, 0.5)), contrast_gain=1.0, channel_order="bgr")
    assert pixel(graded) == pytest.approx([0.6 * 1.1, 0.4 * 1.05, 0.5], abs=1e-6)


def test_grade_default_is_tint_then_curve() -> None:
    red, green, blue = 0.5, 0.3, 0.7
    expected = [
        logistic_curve(red, SHINKAI_CONTRAST_GAIN),
        logistic_curve(green * SHINKAI_GREEN_GAIN, SHINKAI_CONTRAST_GAIN),
        logistic_curve(blue * SHINKAI_BLUE_GAIN, SHINKAI_CONTRAST_GAIN),
    ]
    assert pixel(grade_colors(constant((red, green, blue)))) == pytest.approx(expected, abs=1e-6)


def test_grade_clips_a_boosted_blue_at_one() -> None:
    assert pixel(grade_colors(constant((0.2, 0.2, 0.95)), contrast_gain=1.0))[2] == 1.0


def test_grade_half_strength_is_a_milder_grade_not_a_crossfade() -> None:
    image = random_image(size=16)
    half = grade_colors(image, strength=0.5)
    milder = grade_colors(image, blue_gain=1.05, green_gain=1.025, contrast_gain=1.1)
    torch.testing.assert_close(half, milder)
    assert not torch.allclose(half, torch.lerp(image, grade_colors(image), 0.5), atol=1e-4)


def test_grade_rejects_an_unknown_channel_order() -> None:
    with pytest.raises(ValueError, match="channel_order"):
        grade_colors(constant((0.5, 0.5, 0.5)), channel_order="rbg")  # type: ignore[arg-type]


# --- sigmoid_contrast ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gain", [0.5, 1.0, SHINKAI_CONTRAST_GAIN, 3.0, 10.0])
def test_sigmoid_keeps_black_mid_grey_and_white_exactly(gain: float) -> None:
    ends = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    assert torch.equal(sigmoid_contrast(ends, gain), ends)


def test_sigmoid_matches_the_logistic_of_the_scaled_logit() -> None:
    xs = [0.05, 0.2, 0.4, 0.6, 0.9]
    curved = sigmoid_contrast(torch.tensor(xs).view(1, 1, 1, -1), 2.0).flatten().tolist()
    assert curved == pytest.approx([logistic_curve(x, 2.0) for x in xs], abs=1e-6)


def test_sigmoid_slope_at_mid_grey_is_the_gain() -> None:
    step = 1e-3
    around = torch.tensor([0.5 - step, 0.5 + step], dtype=torch.float64).view(1, 1, 1, 2)
    low, high = sigmoid_contrast(around, 1.5).flatten().tolist()
    assert (high - low) / (2 * step) == pytest.approx(1.5, rel=1e-4)


def test_sigmoid_adds_contrast_and_is_symmetric() -> None:
    x = torch.linspace(0, 1, 101).view(1, 1, 1, -1)
    curved = sigmoid_contrast(x, 1.5)
    assert (curved[..., :50] < x[..., :50] + 1e-7).all() and (curved[..., 51:] > x[..., 51:] - 1e-7).all()
    torch.testing.assert_close(curved.flip(-1), 1 - curved)
    assert (curved.diff(dim=-1) > 0).all()


def test_sigmoid_rejects_a_non_positive_gain() -> None:
    with pytest.raises(ValueError, match="gain"):
        sigmoid_contrast(torch.zeros(1, 1, 2, 2), 0.0)


# --- add_glow -----------------------------------------------------------------------------------------------


def test_glow_adds_nothing_to_a_dark_image() -> None:
    dark = constant((0.3, 0.5, 0.7), size=32)
    assert torch.equal(add_glow(dark), dark)


def test_glow_adds_the_computed_amount_to_a_uniform_bright_image() -> None:
    colour = (0.95, 0.95, 0.6)
    luma = sum(w * c for w, c in zip(BT601, colour, strict=True))
    ramp = (luma - GLOW_THRESHOLD) / (1 - GLOW_THRESHOLD)
    # The blur of a constant is the constant, so each channel gains weight * ramp * itself.
    expected = [min(1.0, c + GLOW_WEIGHT * ramp * c) for c in colour]
    assert expected[0] == 1.0 and expected[2] < 1.0  # one clamped channel, one measured one
    assert pixel(add_glow(constant(colour, size=32))) == pytest.approx(expected, abs=1e-5)


def test_glow_rejects_an_even_kernel() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        add_glow(constant((0.9, 0.9, 0.9)), kernel_size=4)


# --- equalize_contrast --------------------------------------------------------------------------------------


def test_clahe_leaves_a_constant_image_nearly_unchanged() -> None:
    flat = constant((0.2, 0.5, 0.8), size=SIZE)
    # Clipping spreads some of the single histogram bin over the others, which moves a constant by < 4/255.
    torch.testing.assert_close(equalize_contrast(flat), flat, atol=4 / 255, rtol=0)


def test_clahe_raises_the_contrast_of_a_low_contrast_gradient_without_moving_hue() -> None:
    # A faint gradient repeated every 8 pixels, so each 16-pixel tile sees all of it. (A single ramp across the
    # whole image is left almost alone: CLAHE's interpolation between tiles averages each tile's boost away.)
    period = 8
    steps = torch.arange(SIZE) % period / (period - 1)
    ramps = (0.45 + 0.1 * steps).view(1, 1, 1, SIZE).expand(1, 1, SIZE, SIZE)
    hazy = (ramps * torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)).contiguous()
    clear = equalize_contrast(hazy)
    before, after = rgb_to_lab(hazy), rgb_to_lab(clear)
    assert after[:, 0].std() > 1.4 * before[:, 0].std()
    hue_before = torch.atan2(before[:, 2], before[:, 1])
    hue_after = torch.atan2(after[:, 2], after[:, 1])
    assert (hue_after - hue_before).abs().max() < 1e-3  # radians


def test_clahe_strength_blends_linearly() -> None:
    image = random_image(size=64)
    torch.testing.assert_close(
        equalize_contrast(image, strength=0.25), torch.lerp(image, equalize_contrast(image), 0.25)
    )


# --- blend and shinkai_finish -------------------------------------------------------------------------------


def test_blend_ends_and_middle() -> None:
    photo, stylized = constant((0.2, 0.4, 0.6)), constant((0.6, 0.0, 1.0))
    assert torch.equal(blend(photo, stylized, 0.0), photo)
    assert torch.equal(blend(photo, stylized, 1.0), stylized)
    assert pixel(blend(photo, stylized, 0.25)) == pytest.approx([0.3, 0.3, 0.7], abs=1e-6)


def test_blend_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        blend(constant((0, 0, 0), size=8), constant((0, 0, 0), size=16), 0.5)


def test_shinkai_finish_of_mid_grey_is_the_grade_alone() -> None:
    # Mid grey graded stays well below the glow threshold, so the finish is the grade by hand.
    expected = [
        logistic_curve(0.5, SHINKAI_CONTRAST_GAIN),
        logistic_curve(0.5 * SHINKAI_GREEN_GAIN, SHINKAI_CONTRAST_GAIN),
        logistic_curve(0.5 * SHINKAI_BLUE_GAIN, SHINKAI_CONTRAST_GAIN),
    ]
    assert pixel(shinkai_finish(constant((0.5, 0.5, 0.5), size=32))) == pytest.approx(expected, abs=1e-6)


def test_shinkai_finish_makes_a_bright_sky_glow() -> None:
    sky = constant((0.8, 0.9, 1.0), size=32)
    graded = grade_colors(sky)
    assert pixel(shinkai_finish(sky))[1] > pixel(graded)[1] + 0.01


# --- every filter -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILTERS)
def test_strength_zero_is_the_identity(name: str) -> None:
    image = random_image()
    assert torch.equal(FILTERS[name](image, strength=0.0), image)


def test_blend_strength_zero_is_the_identity() -> None:
    image = random_image()
    assert torch.equal(blend(image, random_image(seed=1), 0.0), image)


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_values_stay_in_range(name: str, strength: float) -> None:
    image = random_image()
    image[..., :16, :] = 0.95  # highlights that the gains and the glow push past 1
    image[..., -16:, :] = 0.0
    out = FILTERS[name](image, strength=strength)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, image)


@pytest.mark.parametrize("name", FILTERS)
def test_a_batch_of_two_is_two_independent_images(name: str) -> None:
    first, second = random_image(seed=1), random_image(seed=2)
    batched = FILTERS[name](torch.cat([first, second]))
    assert batched.shape == (2, 3, SIZE, SIZE)
    torch.testing.assert_close(batched[:1], FILTERS[name](first))
    torch.testing.assert_close(batched[1:], FILTERS[name](second))


BAD_IMAGES = {
    "no batch axis": torch.rand(3, 16, 16),
    "four channels": torch.rand(1, 4, 16, 16),
    "one channel": torch.rand(1, 1, 16, 16),
    "integers": torch.zeros(1, 3, 16, 16, dtype=torch.uint8),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("bad", BAD_IMAGES)
def test_bad_shapes_raise(name: str, bad: str) -> None:
    with pytest.raises(ValueError):
        FILTERS[name](BAD_IMAGES[bad])


@pytest.mark.parametrize("bad", BAD_IMAGES)
def test_blend_bad_shapes_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        blend(BAD_IMAGES[bad], BAD_IMAGES[bad], 0.5)


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_zero_one_raises(name: str, strength: float) -> None:
    with pytest.raises(ValueError, match="strength"):
        FILTERS[name](random_image(size=16), strength=strength)


def test_big_images_are_equalised_from_a_smaller_copy_nearly_the_same() -> None:
    """On real photos (scikit-image: coffee CC0, rocket public domain) at 1200 px, equalised from a 600 px copy."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from animegan.filters import equalize_contrast
    from animegan.images import to_tensor

    for photo in (data.coffee(), data.rocket()):
        picture = Image.fromarray(photo)
        picture = picture.resize((1200, round(1200 * picture.height / picture.width)), Image.Resampling.LANCZOS)
        image = to_tensor(np.asarray(picture))
        exact = equalize_contrast(image)
        approx = equalize_contrast(image, max_side=600)
        assert approx.shape == image.shape
        assert 10 * torch.log10(1 / ((approx - exact) ** 2).mean()) > 34  # measured 35.9 dB on both
        assert (approx - exact).abs().mean() < 0.2 * (exact - image).abs().mean()  # the change is reproduced
        assert torch.equal(equalize_contrast(image, max_side=1200), exact)  # small enough: computed exactly


def test_local_filters_in_strips_equal_the_whole_image() -> None:
    from animegan.filters import shinkai_finish
    from animegan.tiling import run_in_strips

    image = torch.rand(1, 3, 300, 200, generator=torch.Generator().manual_seed(5))
    whole = shinkai_finish(image)
    strips = run_in_strips(shinkai_finish, image, strip=64, halo=16)
    assert torch.allclose(strips, whole, atol=1e-5)
