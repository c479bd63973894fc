"""Clips in with PyAV: check a clip, plan it, and read its frames at a capped rate (``mp4.py`` writes them out).

The engine stylizes a clip in three steps that may run in different processes (``engine.py``):

1. ``scan`` (with ``video.plan_clip`` looking at every frame) reads the clip once: checks it, chooses the output
   size and frame rate, and gathers what must be the same for every frame (the contrast curves, the face tracks)
   into a ``ClipPlan``.
2. ``read_frames`` gives the frames of one chunk ``[first, stop)``; they are stylized and ``mp4.encode_segment``
   turns them into an MP4 segment. Chunks are independent, so they can run on every worker at once.
3. ``mp4.join_segments`` puts the segments one after the other and adds the clip's own sound, cut to match.

Output frame k shows the source frame on screen at ``start + k / fps``: dropping frames to the rate cap, or
resampling a variable frame rate, keeps every frame at its own time, so the sound stays in sync.

Over 400 lines on purpose: the checks (limits, allow-listed containers and codecs, every frame's size) and the
reading they guard are one concept; split, each half would be read only with the other.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import av
import av.error
import numpy as np

from animegan.errors import ImageTooLarge, UnsupportedClip, sentence

DEFAULT_MAX_SECONDS = 20.0
DEFAULT_MAX_FPS = 15.0
DEFAULT_CLIP_SIDE = 512
MIN_CLIP_SIDE = 64
MAX_SOURCE_PIXELS = 3840 * 2160  # 4K UHD; an 8K frame alone is 100 MB of RGB
MAX_SOURCE_FPS = Fraction(240)
FALLBACK_FPS = Fraction(25)  # when a stream states no usable rate
TIME_EPSILON = 1e-3  # seconds: timestamps this close count as equal (rounding in time bases)
FPS_DENOMINATOR_LIMIT = 1001

# Only the containers and codecs people send (phones, browsers, GIF makers, cameras). FFmpeg reads hundreds more,
# each one attack surface for no gain, as images have theirs (``images.WANTED_FORMATS``). Names as FFmpeg gives
# them: a demuxer's family name, a codec's canonical name (whichever decoder implements it).
DEMUXERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "gif"})
VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "gif"})
# A sound outside this list is left out: the clip comes back silent rather than refused.
AUDIO_CODECS = frozenset(
    {"aac", "mp3", "opus", "vorbis", "flac", "alac", "ac3", "eac3", "amr_nb", "amr_wb", "pcm_s16le", "pcm_s16be",
     "pcm_s24le", "pcm_s24be", "pcm_f32le", "pcm_u8"}
)  # fmt: skip

EMPTY = sentence("That file is empty: there is no video in it.")
NOT_A_CLIP = sentence("That file is not a video I can read (MP4, MOV, WebM, GIF...).")
NO_VIDEO = sentence("That file has no picture in it (only sound, perhaps). Please send a video or a GIF.")
DAMAGED = sentence("That video is damaged or incomplete (perhaps cut off while uploading); please send it again.")
NO_FRAMES = sentence("No picture could be read from that video; it may be damaged. Please send it again.")
FRAME_TOO_LARGE = sentence(
    "Part of that video is larger than 4K (3840x2160), the largest I take. Please send a smaller video."
)


def cut_note(seconds: float) -> str:
    """The plain sentence for a clip cut to its first ``seconds``."""
    return f"The video was longer than {seconds:g} s, so only its first {seconds:g} s were drawn."


@dataclass(frozen=True)
class ClipLimits:
    """What a clip is cut and scaled to: its length, frame rate and long side, and the largest source frame."""

    max_seconds: float = DEFAULT_MAX_SECONDS
    max_fps: float = DEFAULT_MAX_FPS
    long_side: int = DEFAULT_CLIP_SIDE
    max_source_pixels: int = MAX_SOURCE_PIXELS


@dataclass(frozen=True)
class ClipPlan:
    """What every step of one clip must agree on; plain values, so it travels as JSON between processes.

    Attributes:
        width, height: the output's size (even, rotation applied).
        fps_num, fps_den: the output's frame rate.
        frames: output frames.
        start: source time (s) of output frame 0.
        rotation: counter-clockwise degrees the stored frames are turned to be shown upright.
        has_audio: the source has a sound track (it goes into the output).
        animation: the source is a GIF-like animation (no sound ever; sent back as an animation).
        notes: plain sentences for the person (the clip was cut...).
        curves: the clip's contrast tile curves (``clipstats.ClipCurves.values``), or ``None`` for none.
        faces: per output frame, the faces to paint as ``{"box": [x0, y0, x1, y1], "landmarks": [[x, y] * 5]}``.
        max_source_pixels: the largest decoded frame the chunks accept (``ClipLimits.max_source_pixels``).
    """

    width: int
    height: int
    fps_num: int
    fps_den: int
    frames: int
    start: float
    rotation: int = 0
    has_audio: bool = False
    animation: bool = False
    notes: tuple[str, ...] = ()
    curves: list[list[list[float]]] | None = None
    faces: list[list[dict[str, list[float] | list[list[float]]]]] = field(default_factory=list)
    max_source_pixels: int = MAX_SOURCE_PIXELS

    @property
    def fps(self) -> Fraction:
        """The output frame rate."""
        return Fraction(self.fps_num, self.fps_den)

    @property
    def duration(self) -> float:
        """Seconds the output lasts."""
        return float(self.frames / self.fps)

    def frame_time(self, index: int) -> float:
        """Source time (s) shown by output frame ``index``."""
        return self.start + float(index / self.fps)

    def to_json(self) -> str:
        """The plan as JSON (``from_json`` reads it back)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> ClipPlan:
        """A plan written by ``to_json``."""
        values = json.loads(text)
        values["notes"] = tuple(values.get("notes", ()))
        return cls(**values)


@dataclass(frozen=True)
class SourceInfo:
    """What the container says before any frame is decoded."""

    width: int
    height: int
    rate: Fraction
    has_audio: bool
    animation: bool


def probe(data: bytes, limits: ClipLimits) -> SourceInfo:
    """Check a clip from its headers: readable, in an allowed container and codec, frames not too large.

    The header's size is only a claim: ``decoded`` checks every frame again.

    Raises:
        UnsupportedClip: empty, unreadable, outside the allow-lists, or no video stream.
        ImageTooLarge: frames of more than ``limits.max_source_pixels``.
    """
    with open_clip(data) as container:
        stream = video_stream(container)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_source_pixels:
            raise ImageTooLarge(
                f"That video's frames are {width}x{height}; the largest I take is 4K (3840x2160). "
                "Please send a smaller video."
            )
        return SourceInfo(
            width=width,
            height=height,
            rate=_stream_rate(stream),
            has_audio=sound_stream(container) is not None,
            animation=container.format.name == "gif",
        )


def open_clip(data: bytes) -> av.container.InputContainer:
    """Open clip bytes for reading; ``UnsupportedClip`` with a plain message when they can't be, or when their
    container is not one of ``DEMUXERS``."""
    if not data:
        raise UnsupportedClip(EMPTY)
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as error:
        raise UnsupportedClip(DAMAGED if _looks_like_video(data) else NOT_A_CLIP) from error
    except (av.error.FFmpegError, ValueError) as error:
        raise UnsupportedClip(NOT_A_CLIP) from error
    if container.format.name not in DEMUXERS:
        container.close()
        raise UnsupportedClip(NOT_A_CLIP)
    return container


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The clip's first video stream; ``UnsupportedClip`` when there is none or its codec is not in ``VIDEO_CODECS``."""
    if not container.streams.video:
        raise UnsupportedClip(NO_VIDEO)
    stream = container.streams.video[0]
    if _codec_name(stream) not in VIDEO_CODECS:
        raise UnsupportedClip(NOT_A_CLIP)
    return stream


def sound_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The clip's first sound stream when its codec is in ``AUDIO_CODECS``, else ``None``."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    return stream if _codec_name(stream) in AUDIO_CODECS else None


def output_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(W, H) scaled so the long side is ``long_side`` at most (never enlarged, at least ``MIN_CLIP_SIDE``),
    both even as yuv420p needs."""
    longest = max(width, height)
    goal = min(longest, long_side) if longest >= MIN_CLIP_SIDE else MIN_CLIP_SIDE
    scale = goal / longest
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def output_rate(source: Fraction, max_fps: float) -> Fraction:
    """The output frame rate: the source's, capped at ``max_fps``."""
    cap = Fraction(max_fps).limit_denominator(FPS_DENOMINATOR_LIMIT)
    return min(source, cap)


def frame_times(start: float, fps: Fraction, end: float) -> Iterator[float]:
    """Times of output frames from ``start`` while at least half a frame of the clip is left before ``end``."""
    index = 0
    while True:
        time = start + float(index / fps)
        if time >= end - float(1 / fps) / 2:
            return
        yield time
        index += 1


def sample_at(frames: Iterable[tuple[float, av.VideoFrame]], times: Iterable[float]) -> Iterator[av.VideoFrame]:
    """For each time, the frame on screen then: the last one starting at or before it (the first, before any).

    ``frames`` are (time, frame) in presentation order; both sequences are consumed lazily, so memory holds two
    frames whatever the clip's length.
    """
    source = iter(frames)
    pending = next(source, None)
    current: av.VideoFrame | None = None
    for time in times:
        while pending is not None and pending[0] <= time + TIME_EPSILON:
            current = pending[1]
            pending = next(source, None)
        if current is None:
            if pending is None:
                return
            current = pending[1]
        yield current


def decoded(
    container: av.container.InputContainer, from_time: float | None = None, max_pixels: int = MAX_SOURCE_PIXELS
) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time, frame) of the first video stream, from the key frame at or before ``from_time``.

    A damaged stretch ends the stream there rather than failing, whichever error FFmpeg gives for it: what was read
    so far is kept. Every frame's own
    size is checked, before anything converts it: a stream may change size part-way (a new key frame), whatever
    its header said.

    Raises:
        UnsupportedClip: a codec outside ``VIDEO_CODECS``, or a frame of more than ``max_pixels``.
    """
    stream = video_stream(container)
    stream.thread_type = "AUTO"
    if from_time is not None and from_time > 0 and stream.time_base is not None:
        try:
            container.seek(int(from_time / stream.time_base), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            container.seek(0)
    last = -float("inf")
    try:
        for frame in container.decode(stream):
            if frame.width * frame.height > max_pixels:
                raise UnsupportedClip(FRAME_TOO_LARGE)
            time = _frame_time(frame, last, stream)
            last = time
            yield time, frame
    except av.error.FFmpegError:  # damaged data: invalid, cut short, or a state the decoder refuses (EPERM...)
        return


def to_rgb(frame: av.VideoFrame, size: tuple[int, int], rotation: int) -> np.ndarray:
    """A frame as upright (H, W, 3) uint8 RGB of the output ``size`` (W, H), scaled down by area averaging."""
    turned = rotation % 180 != 0
    width, height = (size[1], size[0]) if turned else size
    pixels = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
    if rotation % 360:
        pixels = np.rot90(pixels, k=rotation // 90)
    return np.ascontiguousarray(pixels)


def read_frames(data: bytes, plan: ClipPlan, first: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """The output frames ``[first, stop)`` of a planned clip as (H, W, 3) uint8, one at a time."""
    stop = plan.frames if stop is None else min(stop, plan.frames)
    times = [plan.frame_time(index) for index in range(first, stop)]
    if not times:
        return
    with open_clip(data) as container:
        frames = decoded(container, times[0] if first else None, plan.max_source_pixels)
        head = next(frames, None)
        if head is not None and head[0] > times[0] + TIME_EPSILON and first:
            container.seek(0)  # the seek landed past the chunk (some formats seek coarsely): read from the start
            frames, head = decoded(container, max_pixels=plan.max_source_pixels), None
        source = frames if head is None else itertools.chain([head], frames)
        for frame in sample_at(source, times):
            yield to_rgb(frame, (plan.width, plan.height), plan.rotation)


@dataclass
class _Timeline:
    """Where the clip ends, learnt while reading it: at the cut, or after its last frame."""

    end: float
    cut: bool = False


def scan(data: bytes, limits: ClipLimits, look: Callable[[np.ndarray], None] | None = None) -> ClipPlan:
    """Read a clip once and plan it: size, rate, frame count (from the frames really there, not from what the
    header claims), rotation, sound; ``look`` sees every output frame (for the statistics and the faces).

    Raises:
        UnsupportedClip, ImageTooLarge: see ``probe``; also when no frame at all can be decoded.
    """
    info = probe(data, limits)
    fps = output_rate(info.rate, limits.max_fps)
    half_frame = float(1 / fps) / 2
    with open_clip(data) as container:
        stream = video_stream(container)
        frames = decoded(container, max_pixels=limits.max_source_pixels)
        head = next(frames, None)
        if head is None:
            raise UnsupportedClip(NO_FRAMES)
        start, rotation = head[0], int(head[1].rotation or 0)
        turned = rotation % 180 != 0
        size = output_size(*((info.height, info.width) if turned else (info.width, info.height)), limits.long_side)
        timeline = _Timeline(end=start + limits.max_seconds)

        def until_cut() -> Iterator[tuple[float, av.VideoFrame]]:
            last = head
            for time, frame in itertools.chain([head], frames):
                if time >= start + limits.max_seconds:
                    timeline.cut = True
                    return
                last = (time, frame)
                yield last
            timeline.end = min(timeline.end, last[0] + _frame_seconds(last[1], info.rate, stream))

        source = until_cut()
        pending = next(source, None)
        current: av.VideoFrame = head[1]
        count = 0
        while start + float(count / fps) < timeline.end - half_frame:
            time = start + float(count / fps)
            while pending is not None and pending[0] <= time + TIME_EPSILON:
                current = pending[1]
                pending = next(source, None)
            if time >= timeline.end - half_frame:  # the end became known while reading up to this frame
                break
            if look is not None:
                look(to_rgb(current, size, rotation))
            count += 1
        if count == 0:  # a single very short frame: still one frame out
            if look is not None:
                look(to_rgb(head[1], size, rotation))
            count = 1
    notes = (cut_note(limits.max_seconds),) if timeline.cut else ()
    return ClipPlan(
        width=size[0],
        height=size[1],
        fps_num=fps.numerator,
        fps_den=fps.denominator,
        frames=count,
        start=start,
        rotation=rotation,
        has_audio=info.has_audio and not info.animation,
        animation=info.animation,
        notes=notes,
        max_source_pixels=limits.max_source_pixels,
    )


def _stream_rate(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= MAX_SOURCE_FPS:
            return Fraction(rate).limit_denominator(FPS_DENOMINATOR_LIMIT)
    return FALLBACK_FPS


def _frame_time(frame: av.VideoFrame, previous: float, stream: av.video.stream.VideoStream) -> float:
    """A frame's presentation time (s); frames without one follow the previous one at the stream's rate."""
    if frame.time is not None:
        return float(frame.time)
    if previous == -float("inf"):
        return 0.0
    return previous + float(1 / _stream_rate(stream))


def _frame_seconds(frame: av.VideoFrame, rate: Fraction, stream: av.video.stream.VideoStream) -> float:
    """How long a frame stays on screen: its own duration when the file says, else one frame at the stream rate."""
    duration = getattr(frame, "duration", None)
    if duration and stream.time_base is not None:
        return float(duration * stream.time_base)
    return float(1 / rate)


def _codec_name(stream: av.stream.Stream) -> str:
    """The stream's codec as FFmpeg names the format ("av1"), not the decoder that reads it ("libdav1d"); "" when
    FFmpeg has no decoder for it (the stream then has no codec context at all)."""
    context = stream.codec_context
    return "" if context is None else str(context.codec.canonical_name)


def _looks_like_video(data: bytes) -> bool:
    head = data[:64]
    return b"ftyp" in head or head.startswith((b"\x1a\x45\xdf\xa3", b"GIF8", b"RIFF"))
