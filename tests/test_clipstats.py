"""Clip-wide contrast curves and face tracks: small tensors whose answers are known by hand."""

from __future__ import annotations

import pytest
import torch

from animegan.clipstats import apply_tile_curves, clahe_curves, equalize_with_curves, tile_histograms
from animegan.faces import Face
from animegan.facetracks import fill_gaps, smooth_landmarks, track_faces


def test_tile_histograms_count_each_tile_and_bin() -> None:
    light = torch.zeros(2, 1, 4, 4)
    light[:, :, :2, 2:] = 1.0  # the top right tile is white, in both frames
    counts = tile_histograms(light, grid=(2, 2), bins=4)
    assert counts.shape == (2, 2, 4)
    assert counts[0, 1, 3] == 8 and counts[0, 1, 0] == 0
    assert counts[0, 0, 0] == counts[1, 0, 0] == counts[1, 1, 0] == 8
    assert counts.sum() == 32


def test_clahe_curves_of_a_flat_histogram_are_the_identity() -> None:
    flat = torch.ones(1, 1, 4)
    assert torch.allclose(clahe_curves(flat, clip_limit=0), torch.tensor([[[0.25, 0.5, 0.75, 1.0]]]))


def test_clahe_curves_clip_and_spread_the_excess() -> None:
    spike = torch.tensor([[[8.0, 0.0, 0.0, 0.0]]])  # mean bin height 2; cap at 2 x 2 = 4; excess 4 spread: +1 each
    assert torch.allclose(clahe_curves(spike, clip_limit=2.0), torch.tensor([[[5 / 8, 6 / 8, 7 / 8, 1.0]]]))


def test_an_empty_tile_gets_the_identity_curve() -> None:
    assert torch.allclose(clahe_curves(torch.zeros(1, 1, 3)), torch.tensor([[[0.0, 0.5, 1.0]]]))


def test_apply_tile_curves_interpolates_between_tile_centres() -> None:
    curves = torch.stack([torch.zeros(2), torch.ones(2)]).reshape(1, 2, 2)  # left tile maps to 0, right to 1
    light = torch.zeros(1, 1, 1, 4)
    mapped = apply_tile_curves(light, curves)[0, 0, 0]
    # centres of the two tiles are at x = 0.5 and 2.5 (pixel centres 0..3): 0, 0.25, 0.75, 1 by distance
    assert torch.allclose(mapped, torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_equalize_with_identity_curves_keeps_the_image() -> None:
    image = torch.rand(1, 3, 16, 16)
    identity = torch.linspace(0, 1, 256).expand(8, 8, 256).contiguous()
    change = (equalize_with_curves(image, identity) - image).abs()
    assert change.max() < 0.02 and change.mean() < 0.002, "no more than the 256 lightness bins round off"


def test_the_same_frame_gets_the_same_result_whatever_its_neighbours() -> None:
    frame = torch.rand(1, 3, 32, 32)
    curves = clahe_curves(tile_histograms(torch.rand(5, 1, 32, 32)))
    assert torch.equal(equalize_with_curves(frame, curves), equalize_with_curves(frame.clone(), curves))


def test_smoothing_keeps_still_and_steady_motion() -> None:
    still = torch.full((7, 5, 2), 3.0)
    assert torch.allclose(smooth_landmarks(still), still)
    ramp = torch.arange(7.0)[:, None, None].expand(7, 5, 2)
    assert torch.allclose(smooth_landmarks(ramp)[2:5], ramp[2:5])


def test_smoothing_averages_out_jitter() -> None:
    jitter = torch.tensor([1.0, -1.0] * 5)[:, None, None].expand(10, 5, 2)
    assert smooth_landmarks(jitter)[2:8].abs().max() <= 0.2


def test_fill_gaps_interpolates_missing_frames() -> None:
    frames, filled = fill_gaps([2, 5], torch.stack([torch.zeros(5, 2), torch.full((5, 2), 3.0)]))
    assert frames == [2, 3, 4, 5]
    assert torch.allclose(filled[:, 0, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))


def _face(x: float) -> Face:
    points = torch.tensor([[x, 10.0], [x + 20, 10.0], [x + 10, 20.0], [x + 2, 30.0], [x + 18, 30.0]])
    return Face(box=(x - 5, 0.0, x + 25, 40.0), landmarks=points, score=0.99)


def test_track_faces_fills_a_missed_frame_and_drops_a_one_frame_false_face() -> None:
    detections = [[_face(10)], [_face(12)], [], [_face(16)], [_face(18), _face(200)]]
    tracked = track_faces(detections)
    assert [len(faces) for faces in tracked] == [1, 1, 1, 1, 1]
    assert tracked[2][0].landmarks[0, 0] == pytest.approx(14.0)


def test_faces_detected_on_every_other_frame_are_on_every_frame() -> None:
    detections = [[_face(10)], [], [_face(14)], [], [_face(18)], []]
    tracked = track_faces(detections, every=2)
    assert [len(faces) for faces in tracked] == [1] * 6, "filled between, held after the last detection"
    assert tracked[3][0].landmarks[0, 0] == pytest.approx(16.0, abs=0.5)
