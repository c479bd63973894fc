"""Face fidelity: how far the stylized faces' landmarks move, on the licensed face photos held back from calibration.

    .venv/bin/python bench/faces.py [--paths auto fp32 ...] [--face-path fp32]

For each face photo of ``weights/calibration`` that INT8 calibration does not see (``calibration_set`` calibrates on
``photos[0::2]``), the photo is stylized at the default settings; MTCNN finds the 5 landmarks on the source and on
the result. A face's NME is the mean distance between its landmarks there and here over its inter-ocular distance
(IOD) on the source; faces with an IOD of at least 60 px count. Each path's worst and mean NME are printed side by
side with eager fp32's, all in one run. A face MTCNN does not find again in the result (a face cut by the frame,
on every path) is counted apart. ``--face-path`` adds variants where only the face pass takes another path
(the scene keeps the default one), which says whether a miss comes from the face pass.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from animegan.engine import DEFAULT_WORKING_SIZE, Engine
from animegan.faces import Face, FaceDetector
from animegan.images import to_tensor
from animegan.pipeline import stylize_image
from animegan.quantize import calibration_photos, default_calibration_dir
from tests.support_faces import licensed_face_photos

MIN_IOD_PX = 60.0
NME_BOUND = 0.075  # issue 21: the worst held-back face on the default path
# A face of the result belongs to a face of the source when their eye midpoints are this close (in source IODs).
MATCH_RADIUS_IOD = 0.5


@dataclass(frozen=True)
class FaceError:
    """One source face's landmark error on one path (``nme`` is inf when the result has no face there)."""

    photo: str
    iod: float
    nme: float


def held_back(folder: Path) -> list[Path]:
    """Face photos INT8 calibration never sees (it calibrates on ``photos[0::2]``)."""
    calibrating = set(calibration_photos(folder)[0::2])
    return [photo for photo in licensed_face_photos(folder) if photo not in calibrating]


def load(photo: Path, side: int = DEFAULT_WORKING_SIZE) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1]: the photo brought to the working size (the shipped copies are 640 px), as
    ``bench/engine.py`` brings its face photo to 1024 px."""
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    scale = side / max(rgb.size)
    rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
    return to_tensor(np.array(rgb))


def eye_midpoint(face: Face) -> torch.Tensor:
    return face.landmarks[:2].mean(0)


def errors(photo: str, source: Sequence[Face], result: Sequence[Face]) -> list[FaceError]:
    """NME of each source face with IOD >= 60 px against the nearest result face (inf when none is near)."""
    found = []
    for face in source:
        iod = face.eye_distance
        if iod < MIN_IOD_PX:
            continue
        near = [
            other
            for other in result
            if float((eye_midpoint(other) - eye_midpoint(face)).norm()) < MATCH_RADIUS_IOD * iod
        ]
        if not near:
            found.append(FaceError(photo, iod, float("inf")))
            continue
        match = min(near, key=lambda other: float((eye_midpoint(other) - eye_midpoint(face)).norm()))
        distance = (match.landmarks - face.landmarks).norm(dim=1).mean()
        found.append(FaceError(photo, iod, float(distance) / iod))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", nargs="+", default=["auto", "fp32"], help="engine precisions for the whole photo")
    parser.add_argument("--face-path", nargs="*", default=[], help="precisions for the face pass only (scene: auto)")
    parser.add_argument("--style", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = default_calibration_dir()
    photos = held_back(folder)
    detector = FaceDetector()
    sources = {photo.name: (load(photo), detector.detect(load(photo))) for photo in photos}
    engines = {path: Engine(precision=path) for path in {*args.paths, *args.face_path, "auto"}}
    default = engines["auto"]
    style = default.style(args.style)
    variants = {path: engines[path] for path in args.paths}
    results: dict[str, list[FaceError]] = {}
    for label, engine in variants.items():
        results[label] = []
        for name, (image, faces) in sources.items():
            stylized, _ = engine.stylize(image, style.name)
            results[label] += errors(name, faces, detector.detect(stylized))
    for path in args.face_path:
        label = f"scene auto, faces {path}"
        face_model = engines[path].face_generator(style)
        results[label] = []
        for name, (image, faces) in sources.items():
            stylized = stylize_image(
                image,
                default.generator(style.scene_model),
                faces=faces,
                face_model=face_model,
                finish=style.finish,
                scene_side=default.scene_side,
            )
            results[label] += errors(name, faces, detector.detect(stylized))
    print(f"{len(photos)} held-back face photos: {', '.join(photo.name for photo in photos)}")
    print(f"style {style.name}; faces with IOD >= {MIN_IOD_PX:.0f} px; NME bound {NME_BOUND} (worst face)\n")
    decisions = default.precision_report()
    if decisions:
        print("auto chose: " + "; ".join(f"{name}: {summary}" for name, summary in decisions.items()) + "\n")
    labels = list(results)
    rows = results[labels[0]]
    print(f"| photo | IOD px | {' | '.join(labels)} |")
    print(f"|---|---:|{'---:|' * len(labels)}")
    for index, error in enumerate(rows):
        row = " | ".join(f"{results[label][index].nme:.4f}" for label in labels)
        print(f"| {error.photo} | {error.iod:.0f} | {row} |")
    worst = " | ".join(f"**{max(found(results[label])):.4f}**" for label in labels)
    mean = " | ".join(f"{statistics.fmean(found(results[label])):.4f}" for label in labels)
    missed = " | ".join(str(sum(math.isinf(error.nme) for error in results[label])) for label in labels)
    print(f"| worst (faces found again) | | {worst} |")
    print(f"| mean (faces found again) | | {mean} |")
    print(f"| not found again (inf) | | {missed} |")
    verdict = max(found(results[labels[0]]))
    print(f"\n{labels[0]}: worst {verdict:.4f} {'<=' if verdict <= NME_BOUND else '>'} {NME_BOUND}")


def found(errors: Sequence[FaceError]) -> list[float]:
    """The NMEs of the faces MTCNN found again in the result (a miss has no landmarks to compare)."""
    return [error.nme for error in errors if not math.isinf(error.nme)] or [float("nan")]


if __name__ == "__main__":
    main()
