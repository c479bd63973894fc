"""Face2paint on real photos: detection, alignment, warping back and blending.

Over 400 lines on purpose: each step of face2paint is tested on the same real photos, in order.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
from kornia.geometry.transform import invert_affine_transform, warp_affine
from PIL import Image
from skimage.transform import SimilarityTransform
from torch import Tensor

from animegan.faces import (
    FFHQ_TEMPLATE,
    MTCNN_EARLY_THRESHOLDS,
    Face,
    FaceDetector,
    align_face,
    canonical_landmarks,
    crop_side_in_image,
    crop_size_for,
    face_mask,
    paint_faces,
    similarity_transform,
)
from animegan.mtcnn import MTCNN, nms
from animegan.quantize import default_calibration_dir
from tests import support_faces as photos

REPO = Path(__file__).resolve().parents[1]

SIZE = 512
# The brief's bar for landmarks found again after a change: a fraction of the inter-ocular distance.
LANDMARK_TOLERANCE = 0.05
# MTCNN's own landmarks on a tilted head wander further (about 9% here); the crop test below holds the line.
TILTED_LANDMARK_TOLERANCE = 0.12
TILT_DEGREES = 25.0
# Fully inside / outside the blend mask.
OPAQUE, CLEAR = 0.99, 0.01
# A feathered seam ramps over at least this many image pixels, never jumping more than MAX_SEAM_STEP per pixel.
MIN_SEAM_PX = 8
MAX_SEAM_STEP = 0.2
# Below this box side the astronaut's face must be skipped by a detector with the default min_face_size.
SMALL_FACTOR = 0.3
# Grey from a shrunk 1 px checkerboard varies by less than this when the warp is antialiased.
ALIAS_STD = 0.05
# Landmark dots for the round trip, px.
DOT_SIGMA = 2.0


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> Tensor:
    return photos.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(detector: FaceDetector, astronaut: Tensor) -> Face:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def landmark_error(found: Tensor, expected: Tensor, eye_distance: float) -> float:
    """Largest landmark distance as a fraction of the inter-ocular distance."""
    return float(torch.linalg.vector_norm(found - expected, dim=1).max()) / eye_distance


def blend_weight(photo: Tensor, face: Face) -> Tensor:
    """Where paint_faces puts the face: white faces painted over a black picture, shape (H, W)."""
    black = torch.zeros_like(photo)
    return paint_faces(photo, black, [face], photos.white)[0].mean(0)


def crop_coordinates(photo: Tensor, face: Face) -> Tensor:
    """For every pixel of the photo, where it lands in the aligned crop, shape (H, W, 2)."""
    _, matrix = align_face(photo, face, SIZE)
    height, width = photo.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pixels = torch.stack([xs, ys], dim=-1).float().reshape(-1, 2)
    return photos.apply(matrix, pixels).reshape(height, width, 2)


def inside_mask(crop: Tensor) -> Tensor:
    """Crop pixels the face mask covers fully, shape (size, size)."""
    return face_mask(crop.shape[-1])[0, 0] > OPAQUE


# --- similarity_transform -------------------------------------------------------------------------------------


def test_similarity_transform_recovers_exact_similarity() -> None:
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(7, 2, generator=generator, dtype=torch.float64) * 100
    truth = photos.rotation_matrix(angle=0.7, scale=1.8, translation=(12.5, -40.0))
    found = similarity_transform(source, photos.apply(truth, source))
    torch.testing.assert_close(found, truth, rtol=0, atol=1e-9)


def test_similarity_transform_is_least_squares_on_noisy_points() -> None:
    generator = torch.Generator().manual_seed(1)
    source = torch.rand(5, 2, generator=generator, dtype=torch.float64) * 100
    truth = photos.rotation_matrix(angle=-0.3, scale=0.6, translation=(5.0, 7.0))
    target = photos.apply(truth, source) + torch.randn(5, 2, generator=generator, dtype=torch.float64) * 3
    found = similarity_transform(source, target)

    reference = SimilarityTransform.from_estimate(source.numpy(), target.numpy())
    torch.testing.assert_close(found, torch.from_numpy(reference.params[:2]), rtol=0, atol=1e-9)

    def residual(matrix: Tensor) -> float:
        return float((photos.apply(matrix, source) - target).square().sum())

    best = residual(found)
    assert best < residual(truth)
    scale = math.hypot(found[0, 0], found[1, 0])
    angle = math.atan2(found[1, 0], found[0, 0])
    translation = (float(found[0, 2]), float(found[1, 2]))
    step = 1e-3
    for nudged in (
        photos.rotation_matrix(angle + step, scale, translation),
        photos.rotation_matrix(angle, scale * (1 + step), translation),
        photos.rotation_matrix(angle, scale, (translation[0] + step, translation[1])),
        photos.rotation_matrix(angle, scale, (translation[0], translation[1] - step)),
    ):
        assert residual(nudged) > best


def test_similarity_transform_never_reflects() -> None:
    source = torch.tensor(FFHQ_TEMPLATE, dtype=torch.float64)
    mirrored = source * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    found = similarity_transform(source, mirrored)
    assert torch.linalg.det(found[:, :2]) > 0


def test_similarity_transform_rejects_coincident_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(torch.ones(5, 2), torch.rand(5, 2))


# --- template and mask ----------------------------------------------------------------------------------------


def test_canonical_landmarks_scale_with_size() -> None:
    torch.testing.assert_close(canonical_landmarks(512), torch.tensor(FFHQ_TEMPLATE))
    full, half = canonical_landmarks(512), canonical_landmarks(256)
    eyes = slice(0, 2)
    torch.testing.assert_close(
        torch.linalg.vector_norm(half[1] - half[0]), torch.linalg.vector_norm(full[1] - full[0]) / 2
    )
    # Pixel centres scale about the image's corner: centre of pixel 0 is at 0.5 in continuous coordinates.
    torch.testing.assert_close(half[eyes], (full[eyes] + 0.5) / 2 - 0.5)


def test_face_mask_is_one_inside_zero_at_the_edge_and_ramps_over_the_feather() -> None:
    feather = 0.1
    mask = face_mask(SIZE, feather)[0, 0]
    assert mask.shape == (SIZE, SIZE)
    assert mask.min() >= 0 and mask.max() <= 1
    template = canonical_landmarks(SIZE).round().long()
    assert all(mask[y, x] == 1 for x, y in template.tolist())
    edges = torch.cat([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert edges.max() == 0
    centre_row = mask[round(0.52 * (SIZE - 1))]
    right_half = centre_row[SIZE // 2 :]
    assert (right_half[1:] <= right_half[:-1]).all()
    ramp_px = int(((right_half > 0) & (right_half < 1)).sum())
    assert abs(ramp_px - feather * SIZE) <= 2


def test_face_measures_and_rescales_by_pixel_centres() -> None:
    landmarks = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 5.0], [0.0, 8.0], [3.0, 8.0]])
    face = Face(box=(-1.0, -1.0, 4.0, 9.0), landmarks=landmarks, score=0.95)
    assert face.eye_distance == pytest.approx(5.0)
    assert face.box_side == pytest.approx(5.0)
    doubled = face.scaled(2.0, 3.0)
    # Pixel 0's centre sits at 0.5 of the continuous image, so it lands on 2 * 0.5 - 0.5 = 0.5 and 3 * 0.5 - 0.5 = 1.
    torch.testing.assert_close(doubled.landmarks[0], torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(doubled.landmarks[1], torch.tensor([6.5, 13.0]))
    assert doubled.box == pytest.approx((-1.5, -2.0, 8.5, 28.0))
    assert doubled.score == face.score
    with pytest.raises(ValueError):
        Face(box=face.box, landmarks=landmarks[:4], score=face.score)


# --- detection ------------------------------------------------------------------------------------------------


def test_detect_accepts_unbatched_images(detector: FaceDetector, astronaut: Tensor, astronaut_face: Face) -> None:
    faces = detector.detect(astronaut[0])
    assert len(faces) == 1
    torch.testing.assert_close(faces[0].landmarks, astronaut_face.landmarks)


def test_detected_landmarks_are_in_face_order(astronaut_face: Face) -> None:
    left_eye, right_eye, nose, mouth_left, mouth_right = astronaut_face.landmarks.tolist()
    x0, y0, x1, y1 = astronaut_face.box
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in astronaut_face.landmarks.tolist())
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert astronaut_face.score > 0.9
    assert astronaut_face.eye_distance == pytest.approx(math.dist(left_eye, right_eye))


@pytest.mark.parametrize("factor", [2.0, 1.5, 0.75])
def test_detect_reports_points_in_pixels_of_the_given_image(
    detector: FaceDetector, astronaut: Tensor, astronaut_face: Face, factor: float
) -> None:
    # At 1024 px the detector works on a 640 px copy, so this also checks the scaling back.
    faces = detector.detect(photos.resized(astronaut, factor))
    assert len(faces) == 1
    expected = astronaut_face.scaled(factor)
    assert landmark_error(faces[0].landmarks, expected.landmarks, expected.eye_distance) < LANDMARK_TOLERANCE


def test_detect_follows_a_tilted_head(detector: FaceDetector, astronaut: Tensor, astronaut_face: Face) -> None:
    tilted, rotation = photos.rotated(astronaut, TILT_DEGREES)
    faces = detector.detect(tilted)
    assert len(faces) == 1
    expected = photos.apply(rotation, astronaut_face.landmarks)
    assert landmark_error(faces[0].landmarks, expected, astronaut_face.eye_distance) < TILTED_LANDMARK_TOLERANCE


def test_detect_finds_two_faces(detector: FaceDetector, astronaut: Tensor) -> None:
    faces = detector.detect(photos.side_by_side(astronaut, photos.flipped(astronaut)))
    assert len(faces) == 2
    noses_x = sorted(float(face.landmarks[2, 0]) for face in faces)
    assert noses_x[0] < astronaut.shape[-1] < noses_x[1]


def test_detect_skips_small_faces(astronaut: Tensor) -> None:
    small = photos.resized(astronaut, SMALL_FACTOR)
    assert FaceDetector().detect(small) == []
    # The face is there, just small: a detector allowing it finds it, so the skip above is about size.
    found = FaceDetector(min_face_size=MIN_SEAM_PX).detect(small)
    assert len(found) == 1 and found[0].box_side < FaceDetector().min_face_size


def test_detect_finds_nothing_without_a_face(detector: FaceDetector) -> None:
    assert detector.detect(photos.coffee()) == []


# --- alignment ------------------------------------------------------------------------------------------------


def test_align_face_puts_landmarks_on_the_template(astronaut: Tensor, astronaut_face: Face) -> None:
    crop, matrix = align_face(astronaut, astronaut_face, SIZE)
    assert crop.shape == (1, 3, SIZE, SIZE)
    assert crop.min() >= 0 and crop.max() <= 1
    template = canonical_landmarks(SIZE)
    placed = photos.apply(matrix, astronaut_face.landmarks)
    # A similarity cannot fit a real face's 5 points exactly, but a least-squares one maps centroid onto centroid
    # and, for an upright face, leaves the eyes nearly level.
    torch.testing.assert_close(placed.mean(0), template.mean(0), rtol=0, atol=1e-3)
    eye_tilt = math.degrees(math.atan2(float(placed[1, 1] - placed[0, 1]), float(placed[1, 0] - placed[0, 0])))
    assert abs(eye_tilt) < 2.0


def test_align_face_gives_the_same_upright_crop_for_a_tilted_head(
    detector: FaceDetector, astronaut: Tensor, astronaut_face: Face
) -> None:
    tilted, _ = photos.rotated(astronaut, TILT_DEGREES)
    upright_crop, upright_matrix = align_face(astronaut, astronaut_face, SIZE)
    tilted_crop, tilted_matrix = align_face(tilted, detector.detect(tilted)[0], SIZE)

    def angle(matrix: Tensor) -> float:
        return math.degrees(math.atan2(float(matrix[1, 0]), float(matrix[0, 0])))

    # get_rotation_matrix2d turns counter-clockwise on screen, so undoing the tilt turns the other way.
    assert angle(tilted_matrix) - angle(upright_matrix) == pytest.approx(TILT_DEGREES, abs=2.0)
    inside = inside_mask(upright_crop)
    difference = (tilted_crop - upright_crop).abs().mean(1)[0][inside].mean()
    assert difference < 0.05


def test_align_face_gives_the_mirrored_crop_for_a_mirrored_photo(
    detector: FaceDetector, astronaut: Tensor, astronaut_face: Face
) -> None:
    mirrored = photos.flipped(astronaut)
    crop, _ = align_face(astronaut, astronaut_face, SIZE)
    mirrored_crop, matrix = align_face(mirrored, detector.detect(mirrored)[0], SIZE)
    assert torch.linalg.det(matrix[:, :2]) > 0
    difference = (photos.flipped(mirrored_crop) - crop).abs().mean(1)[0][inside_mask(crop)].mean()
    assert difference < 0.05


def test_mtcnn_sees_the_aligned_face_where_the_transform_put_it(
    detector: FaceDetector, astronaut: Tensor, astronaut_face: Face
) -> None:
    crop, matrix = align_face(astronaut, astronaut_face, SIZE)
    faces = detector.detect(crop)
    assert len(faces) == 1
    expected = photos.apply(matrix, astronaut_face.landmarks)
    assert landmark_error(faces[0].landmarks, expected, faces[0].eye_distance) < LANDMARK_TOLERANCE


def test_align_face_smooths_a_face_it_shrinks() -> None:
    shrink = 3.0
    face = photos.template_face(scale=shrink, angle=0.3, offset=(200.0, 150.0))
    crop, _ = align_face(photos.checkerboard(1800, 1800), face, SIZE)
    inside = inside_mask(crop)
    # Unfiltered, sampling 1 px squares every 3 px gives moire in full contrast; filtered, an even grey.
    assert crop[0, 0][inside].std() < ALIAS_STD
    assert crop[0, 0][inside].mean() == pytest.approx(0.5, abs=ALIAS_STD)


# --- warping back and blending --------------------------------------------------------------------------------


def test_align_then_warp_back_is_the_identity(detector: FaceDetector, astronaut: Tensor, astronaut_face: Face) -> None:
    _, matrix = align_face(astronaut, astronaut_face, SIZE)
    back = invert_affine_transform(matrix[None])[0]
    round_trip = photos.apply(back, photos.apply(matrix, astronaut_face.landmarks))
    torch.testing.assert_close(round_trip, astronaut_face.landmarks, rtol=0, atol=1e-3)

    def unchanged(image: Tensor) -> Tensor:
        # Painted over black, so a face put back in the wrong place cannot hide behind the original.
        return paint_faces(image, torch.zeros_like(image), [astronaut_face], lambda crop: crop)

    # Landmarks: a dot drawn on each comes back with its centre where it was.
    dots = photos.dots(astronaut.shape[-2:], astronaut_face.landmarks, DOT_SIGMA)
    centres = photos.dot_centres(unchanged(dots), astronaut_face.landmarks, 4 * DOT_SIGMA)
    assert float(torch.linalg.vector_norm(centres - astronaut_face.landmarks, dim=1).max()) < 1.0

    # Pixels: resampling twice blurs a little; it must stay well under what moving the photo by 1 px costs.
    painted = unchanged(astronaut)
    inside = warp_affine(face_mask(SIZE), back[None], astronaut.shape[-2:])[0, 0] > OPAQUE
    assert inside.sum() > 1000

    def error(image: Tensor) -> Tensor:
        return (image - astronaut).abs().mean(1)[0][inside].mean()

    one_pixel = min(error(astronaut.roll(1, -1)), error(astronaut.roll(1, -2)))
    assert error(painted) < one_pixel / 2
    found = detector.detect(painted)[0]
    assert landmark_error(found.landmarks, astronaut_face.landmarks, astronaut_face.eye_distance) < LANDMARK_TOLERANCE


def test_paint_faces_changes_the_face_only(astronaut: Tensor, astronaut_face: Face) -> None:
    painted = paint_faces(astronaut, astronaut, [astronaut_face], photos.inverted)
    weight = blend_weight(astronaut, astronaut_face)
    opaque = weight > OPAQUE
    assert opaque.sum() > 1000
    face_error = (painted - (1 - astronaut)).abs().mean(1)[0][opaque].mean()
    assert face_error < 0.02

    in_crop = crop_coordinates(astronaut, astronaut_face)
    outside_crop = ((in_crop < 0) | (in_crop > SIZE - 1)).any(-1)
    assert outside_crop.float().mean() > 0.5
    assert torch.equal(painted[..., outside_crop], astronaut[..., outside_crop])


def test_paint_faces_feathers_the_seam(astronaut: Tensor, astronaut_face: Face) -> None:
    weight = blend_weight(astronaut, astronaut_face)
    assert weight.max() == pytest.approx(1.0) and weight.min() == 0
    # No hard edge anywhere: neighbouring pixels never differ by much.
    assert weight.diff(dim=0).abs().max() < MAX_SEAM_STEP
    assert weight.diff(dim=1).abs().max() < MAX_SEAM_STEP
    # Along the row through the nose, out to the right, the weight ramps down over several pixels.
    nose_x, nose_y = astronaut_face.landmarks[2].round().long().tolist()
    ray = weight[nose_y, nose_x:]
    start = int((ray < OPAQUE).nonzero()[0])
    end = int((ray < CLEAR).nonzero()[0])
    assert end - start >= MIN_SEAM_PX


def test_mtcnn_finds_the_face_in_the_painted_photo(
    detector: FaceDetector, astronaut: Tensor, astronaut_face: Face
) -> None:
    softened = photos.resized(photos.resized(astronaut, 0.5), 2.0)
    painted = paint_faces(astronaut, softened, [astronaut_face], photos.posterized)
    assert not torch.allclose(painted, astronaut, atol=0.05)
    faces = detector.detect(painted)
    assert len(faces) == 1
    assert landmark_error(faces[0].landmarks, astronaut_face.landmarks, astronaut_face.eye_distance) < (
        LANDMARK_TOLERANCE
    )


def test_paint_faces_paints_two_faces(detector: FaceDetector, astronaut: Tensor) -> None:
    pair = photos.side_by_side(astronaut, photos.flipped(astronaut))
    faces = detector.detect(pair)
    painted = paint_faces(pair, torch.zeros_like(pair), faces, photos.white)
    for face in faces:
        nose_x, nose_y = face.landmarks[2].round().long().tolist()
        assert painted[0, :, nose_y, nose_x].min() > OPAQUE
    assert painted[0, :, :, astronaut.shape[-1] - 1 : astronaut.shape[-1] + 1].max() == 0


def test_paint_faces_without_faces_returns_the_stylized_image(detector: FaceDetector) -> None:
    photo = photos.coffee()
    stylized = photos.posterized(photo)
    calls: list[Tensor] = []
    painted = paint_faces(photo, stylized, detector.detect(photo), calls.append)
    assert calls == []
    assert torch.equal(painted, stylized)
    assert painted is not stylized


def test_paint_faces_handles_a_face_cut_by_the_border(detector: FaceDetector, astronaut: Tensor) -> None:
    # The top of the head leaves the frame: the crop reaches outside the photo.
    cut = astronaut[..., 90:, :]
    faces = detector.detect(cut)
    assert len(faces) == 1
    painted = paint_faces(cut, torch.zeros_like(cut), faces, photos.white)
    nose_x, nose_y = faces[0].landmarks[2].round().long().tolist()
    assert painted[0, :, nose_y, nose_x].min() > OPAQUE


def test_paint_faces_smooths_a_face_it_shrinks() -> None:
    small = 0.25
    face = photos.template_face(scale=small, angle=-0.2, offset=(40.0, 30.0))
    photo = torch.zeros(1, 3, 200, 200)
    painted = paint_faces(photo, photo, [face], lambda crop: photos.checkerboard(SIZE, SIZE))
    inside = blend_weight(photo, face) > OPAQUE
    assert inside.sum() > 100
    assert painted[0, 0][inside].std() < ALIAS_STD
    assert painted[0, 0][inside].mean() == pytest.approx(0.5, abs=ALIAS_STD)


def test_paint_faces_rejects_mismatched_shapes(astronaut: Tensor, astronaut_face: Face) -> None:
    with pytest.raises(ValueError):
        paint_faces(astronaut, astronaut[..., :-1], [astronaut_face], photos.white)
    with pytest.raises(ValueError):
        paint_faces(astronaut, astronaut, [astronaut_face], lambda crop: crop[..., :-1])


def test_each_face_is_stylized_at_the_size_it_has_in_the_picture(detector: FaceDetector, astronaut: Tensor) -> None:
    """A small face gets a small crop, a big one a big crop, and faces of one size go through in one batch."""
    small = torch.nn.functional.interpolate(astronaut, scale_factor=0.5, mode="area")
    big = torch.nn.functional.interpolate(astronaut, scale_factor=3.0, mode="bilinear")
    small_face, big_face = detector.detect(small)[0], detector.detect(big)[0]
    assert crop_side_in_image(small_face) < crop_side_in_image(big_face)
    assert crop_size_for(small_face, (256, 384, 512)) == 256
    assert crop_size_for(big_face, (256, 384, 512)) == 512
    assert crop_size_for(small_face, (512,)) == 512
    middle = (crop_side_in_image(small_face) + crop_side_in_image(big_face)) / 2
    assert crop_size_for(small_face, (256, round(middle))) == 256

    pair = torch.cat([astronaut, astronaut.flip(-1)], dim=-1)
    batches: list[tuple[int, ...]] = []

    def record(crops: Tensor) -> Tensor:
        batches.append(tuple(crops.shape))
        return photos.white(crops)

    faces = detector.detect(pair)
    painted = paint_faces(pair, torch.zeros_like(pair), faces, record, sizes=(256, 384, 512))
    side = crop_size_for(faces[0], (256, 384, 512))
    assert batches == [(2, 3, side, side)]
    for face in faces:
        nose_x, nose_y = face.landmarks[2].round().long().tolist()
        assert painted[0, :, nose_y, nose_x].min() > OPAQUE


# Our MTCNN against facenet-pytorch's own: the same cascade and weights, so the same detections up to float noise.
DETECTION_TOLERANCE_PX = 0.01
SCORE_TOLERANCE = 1e-4


def facenet_detections(
    pixels: Tensor, min_face_size: int, thresholds: tuple[float, float, float]
) -> tuple[Tensor, Tensor, Tensor]:
    """facenet_pytorch.MTCNN.detect on one (1, 3, H, W) 0..255 image: boxes (N, 4), landmarks (N, 5, 2), scores."""
    from facenet_pytorch import MTCNN as FacenetMTCNN

    reference = FacenetMTCNN(keep_all=True, device="cpu", thresholds=list(thresholds), min_face_size=min_face_size)
    boxes, scores, points = reference.eval().detect(pixels.permute(0, 2, 3, 1), landmarks=True)
    if boxes[0] is None:
        return torch.zeros(0, 4), torch.zeros(0, 5, 2), torch.zeros(0)
    as_tensor = lambda values: torch.tensor(numpy.asarray(values.tolist(), dtype=numpy.float32))  # noqa: E731
    return as_tensor(boxes[0]), as_tensor(points[0]), as_tensor(scores[0])


@pytest.mark.parametrize("min_face_size", [40, 20])
def test_mtcnn_matches_facenet_pytorch_on_the_licensed_photos(min_face_size: int) -> None:
    """Every face photo of weights/calibration and one without faces, at the engine's thresholds and a lower floor."""
    thresholds = (*MTCNN_EARLY_THRESHOLDS, 0.9)
    ours = MTCNN(thresholds)
    for photo in [*photos.licensed_face_photos(), default_calibration_dir() / "food_coffee.jpg"]:
        with Image.open(photo) as image:
            pixels = photos.to_tensor(numpy.array(image.convert("RGB"))) * 255
        boxes, landmarks, scores = facenet_detections(pixels, min_face_size, thresholds)
        found = ours.detect(pixels, min_face_size)
        assert found.boxes.shape == boxes.shape, photo.name
        assert torch.allclose(found.boxes, boxes, atol=DETECTION_TOLERANCE_PX, rtol=0), photo.name
        assert torch.allclose(found.landmarks, landmarks, atol=DETECTION_TOLERANCE_PX, rtol=0), photo.name
        assert torch.allclose(found.scores, scores, atol=SCORE_TOLERANCE, rtol=0), photo.name


def test_nms_keeps_what_torchvision_keeps_even_among_tied_scores() -> None:
    import torchvision

    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(400, 2, generator=generator) * 100
    boxes = torch.cat([corners, corners + 5 + torch.rand(400, 2, generator=generator) * 30], dim=1)
    scores = (torch.rand(400, generator=generator) * 4).round() / 4  # five distinct values: many ties
    for overlap in (0.3, 0.5, 0.7):
        assert torch.equal(nms(boxes, scores, overlap), torchvision.ops.nms(boxes, scores, overlap))


def test_finding_faces_imports_neither_torchvision_nor_dynamo() -> None:
    """torchvision (through facenet-pytorch's __init__) brought torch._dynamo and sympy: 79 MB of each worker."""
    script = (
        "import sys\n"
        "from animegan.faces import FaceDetector\n"
        "from tests.support_faces import astronaut\n"
        "assert FaceDetector().detect(astronaut())\n"
        "heavy = ('torchvision', 'torch._dynamo', 'sympy', 'facenet_pytorch')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
