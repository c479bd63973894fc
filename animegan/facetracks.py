"""Faces followed through a clip: detections linked into tracks, gaps filled, landmarks smoothed over time.

Per-frame detections jitter by a pixel or two and now and then miss a frame; the aligned crop would then shake
and the painted face blink. A track's landmarks are smoothed with a centred moving average, one-frame misses are
filled in, and a track too short to be a real face (a false detection) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from animegan.faces import Face

SMOOTHING_RADIUS = 2  # frames each side: a 5-frame window, 1/3 s at 15 fps
MAX_GAP = 4  # frames a track may miss and still be the same face (detection may run on every other frame)
MIN_TRACK_FRAMES = 3
# A detection continues a track when its landmarks' centre is within this many eye distances of the track's last.
MAX_JUMP_EYE_DISTANCES = 1.0


@dataclass
class FaceTrack:
    """One face through the frames it is seen in (frame index -> detection)."""

    seen: dict[int, Face] = field(default_factory=dict)

    @property
    def last(self) -> int:
        """The last frame this face was seen in."""
        return max(self.seen)


def link_tracks(detections: Sequence[Sequence[Face]]) -> list[FaceTrack]:
    """Greedy frame-to-frame linking: each detection joins the nearest open track close enough, else starts one."""
    tracks: list[FaceTrack] = []
    for index, faces in enumerate(detections):
        open_tracks = [track for track in tracks if index - track.last <= MAX_GAP]
        for face in faces:
            centre = face.landmarks.mean(0)
            best, best_distance = None, float("inf")
            for track in open_tracks:
                previous = track.seen[track.last]
                distance = float(torch.linalg.vector_norm(previous.landmarks.mean(0) - centre))
                if distance <= MAX_JUMP_EYE_DISTANCES * max(previous.eye_distance, 1.0) and distance < best_distance:
                    best, best_distance = track, distance
            if best is None:
                tracks.append(FaceTrack({index: face}))
            else:
                best.seen[index] = face
                open_tracks.remove(best)
    return tracks


def fill_gaps(frames: Sequence[int], landmarks: Tensor) -> tuple[list[int], Tensor]:
    """Landmarks on every frame from the first to the last seen, missing ones linearly interpolated.

    Args:
        frames: increasing frame indices where the face was seen, length N.
        landmarks: shape (N, 5, 2).
    Returns:
        every frame index in ``[frames[0], frames[-1]]`` (length T) and landmarks of shape (T, 5, 2).
    """
    known = torch.tensor(frames, dtype=torch.float32)
    every = torch.arange(frames[0], frames[-1] + 1, dtype=torch.float32)
    right = torch.searchsorted(known, every).clamp(1, max(1, len(frames) - 1))
    left = right - 1
    if len(frames) == 1:
        return [frames[0]], landmarks.clone()
    span = (known[right] - known[left]).clamp(min=1.0)
    weight = ((every - known[left]) / span).clamp(0.0, 1.0)[:, None, None]
    filled = torch.lerp(landmarks[left], landmarks[right], weight)
    return [int(i) for i in every.tolist()], filled


def smooth_landmarks(landmarks: Tensor, radius: int = SMOOTHING_RADIUS) -> Tensor:
    """A centred moving average over time; the window shrinks at the ends instead of padding with copies.

    Args:
        landmarks: shape (T, 5, 2).
        radius: frames each side.
    Returns:
        shape (T, 5, 2).
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must have shape (T, 5, 2), got {tuple(landmarks.shape)}")
    if radius == 0 or landmarks.shape[0] == 1:
        return landmarks.clone()
    series = landmarks.reshape(landmarks.shape[0], -1).T[:, None]  # (10, 1, T)
    kernel = torch.ones(1, 1, 2 * radius + 1, dtype=landmarks.dtype)
    sums = F.conv1d(F.pad(series, (radius, radius)), kernel)
    counts = F.conv1d(F.pad(torch.ones_like(series[:1]), (radius, radius)), kernel)
    return (sums / counts)[:, 0].T.reshape(landmarks.shape)


def track_faces(detections: Sequence[Sequence[Face]], every: int = 1) -> list[list[Face]]:
    """The faces to paint in each frame: tracked, gap-filled and smoothed; short tracks dropped.

    Args:
        detections: the faces found in each frame (in that frame's pixels).
        every: detection ran on every ``every``-th frame only (the others hold empty lists); a track is held for
            ``every - 1`` frames past its last detection, where the next detection would have been.
    Returns:
        one list of faces per frame, same length as ``detections``.
    """
    painted: list[list[Face]] = [[] for _ in detections]
    looked = -(-len(detections) // every)  # frames detection ran on
    for track in link_tracks(detections):
        frames = sorted(track.seen)
        if len(frames) < min(MIN_TRACK_FRAMES, looked):
            continue
        indices, filled = fill_gaps(frames, torch.stack([track.seen[i].landmarks for i in frames]))
        held = min(every - 1, len(detections) - 1 - indices[-1])
        if held > 0:
            indices += list(range(indices[-1] + 1, indices[-1] + 1 + held))
            filled = torch.cat([filled, filled[-1:].expand(held, -1, -1)])
        smoothed = smooth_landmarks(filled)
        for index, points in zip(indices, smoothed, strict=True):
            nearest = track.seen[min(frames, key=lambda seen: abs(seen - index))]
            shift = points.mean(0) - nearest.landmarks.mean(0)
            x0, y0, x1, y1 = nearest.box
            box = (x0 + float(shift[0]), y0 + float(shift[1]), x1 + float(shift[0]), y1 + float(shift[1]))
            painted[index].append(Face(box=box, landmarks=points, score=nearest.score))
    return painted
