"""Guided upsampling: a small result brought up to the photo's size with its edges where the photo has them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from animegan.upsampling import generator_size, guided_upsample


def step_edge(height: int, width: int, column: int) -> torch.Tensor:
    """(1, 3, H, W): dark left of ``column``, bright from it on."""
    image = torch.full((1, 3, height, width), 0.2)
    image[..., column:] = 0.8
    return image


def test_generator_size_keeps_the_shape_in_multiples_of_eight() -> None:
    assert generator_size(1024, 683, 512) == (512, 344)
    assert generator_size(683, 1024, 512) == (344, 512)
    assert generator_size(400, 300, 512) == (400, 304)  # not shrunk, only rounded to multiples of 8


def test_an_edge_comes_back_sharp_and_in_place() -> None:
    photo = step_edge(128, 128, 61)  # the edge falls between the small image's pixels
    small = F.interpolate(photo, size=(64, 64), mode="area")
    bicubic = F.interpolate(small, size=(128, 128), mode="bicubic", align_corners=False)
    guided = guided_upsample(small, photo)
    assert guided.shape == photo.shape
    # The guided result has the photo's edge: steeper than bicubic and at the photo's column.
    guided_steps = (guided[..., 1:] - guided[..., :-1])[0, 0, 64]
    bicubic_steps = (bicubic[..., 1:] - bicubic[..., :-1])[0, 0, 64]
    assert guided_steps.max() > 1.5 * bicubic_steps.max()
    assert int(guided_steps.argmax()) == 60
    assert (guided - photo).abs().mean() < (bicubic.clamp(0, 1) - photo).abs().mean()


def test_flat_areas_stay_flat_and_the_range_stays_in_bounds() -> None:
    photo = torch.rand(1, 3, 96, 80)
    small = torch.full((1, 3, 48, 40), 0.5)
    guided = guided_upsample(small, photo)
    assert guided.shape == (1, 3, 96, 80)
    assert (guided - 0.5).abs().max() < 1e-3  # a flat result gains no texture from the guide
    assert guided_upsample(photo, photo) is photo


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        guided_upsample(torch.rand(3, 10, 10), torch.rand(1, 3, 20, 20))


def test_strips_give_the_whole_picture_result() -> None:
    """A tall picture is filtered in strips (bounded memory); the seams between strips do not show."""
    torch.manual_seed(0)
    guide = F.interpolate(torch.rand(1, 3, 75, 40), size=(600, 320), mode="bilinear")
    small = F.interpolate(guide, size=(300, 160), mode="area")
    stripped = guided_upsample(small, guide)
    up = F.interpolate(small, size=(600, 320), mode="bicubic", align_corners=False).clamp(0, 1)
    from kornia.filters import guided_blur

    whole = guided_blur(guide, up, 9, 1e-3, subsample=2).clamp(0, 1)
    assert (stripped - whole).abs().max() < 2e-3
