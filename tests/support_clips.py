"""Clips the tests make themselves from the example photos: pans and zooms with a sine tone, a GIF, a round 1:1
clip, a still clip, and the bad ones (truncated, audio only, 8K, a header claiming 10 hours, VFR, 10-bit,
rotated, 8K frames behind a small header, a container or codec outside the allow-list). Written with PyAV; nothing
is downloaded.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.3
AUDIO_RATE = 44100

FrameMaker = Callable[[int], np.ndarray]


def example(name: str = "chelsea.jpg") -> np.ndarray:
    """An example photo as (H, W, 3) uint8."""
    return np.asarray(Image.open(EXAMPLES / name).convert("RGB"))


def pan_frames(photo: np.ndarray, size: tuple[int, int], frames: int, step: int = 3) -> FrameMaker:
    """A window of ``size`` (W, H) sliding right by ``step`` px per frame across a copy of ``photo`` scaled to fit."""
    width, height = size
    scale = height / photo.shape[0]
    wide = np.asarray(
        Image.fromarray(photo).resize((max(width + step * frames, round(photo.shape[1] * scale)), height))
    )

    def make(index: int) -> np.ndarray:
        return np.ascontiguousarray(wide[:, index * step : index * step + width])

    return make


def zoom_frames(photo: np.ndarray, size: tuple[int, int], frames: int, zoom: float = 1.3) -> FrameMaker:
    """A slow zoom into the centre of ``photo``, ``zoom`` times at the last frame."""
    width, height = size
    image = Image.fromarray(photo).resize((width, height))

    def make(index: int) -> np.ndarray:
        factor = 1 + (zoom - 1) * index / max(1, frames - 1)
        crop_w, crop_h = width / factor, height / factor
        box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
        return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=box))

    return make


def still_frames(photo: np.ndarray, size: tuple[int, int]) -> FrameMaker:
    """The same picture every frame."""
    picture = np.asarray(Image.fromarray(photo).resize(size))
    return lambda index: picture


def tone(seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """A sine tone, (1, samples) float32."""
    time = np.arange(round(seconds * rate)) / rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * time)).astype(np.float32)[None]


def make_mp4(
    frames: FrameMaker,
    count: int,
    fps: float,
    audio_seconds: float | None = None,
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
    times: list[float] | None = None,
    faststart: bool = False,
    audio_delay: float = 0.0,
) -> bytes:
    """An H.264 MP4 of ``count`` frames; with ``audio_seconds`` an AAC sine tone that long (starting at
    ``audio_delay``); ``times``: the frames' own timestamps (variable frame rate); ``rotation``: display matrix."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "clip.mp4")
        options = {"movflags": "+faststart"} if faststart else {}
        with av.open(path, "w", format="mp4", options=options) as out:
            rate = Fraction(fps).limit_denominator(1001)
            video = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "18"})
            first = frames(0)
            video.height, video.width = first.shape[:2]
            video.pix_fmt = pix_fmt
            time_base = Fraction(1, 1000) if times else 1 / rate
            video.codec_context.time_base = time_base
            if rotation:
                video.set_display_rotation(rotation)
            audio = None
            if audio_seconds:
                audio = out.add_stream("aac", rate=AUDIO_RATE)
                audio.layout = "mono"
            for index in range(count):
                frame = av.VideoFrame.from_ndarray(frames(index), format="rgb24")
                frame.pts = round(times[index] * 1000) if times else index
                frame.time_base = time_base
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
            if audio is not None and audio_seconds:
                samples = tone(audio_seconds)
                step = 1024
                for offset in range(0, samples.shape[1], step):
                    piece = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(samples[:, offset : offset + step]), format="fltp", layout="mono"
                    )
                    piece.sample_rate = AUDIO_RATE
                    piece.pts = offset + round(audio_delay * AUDIO_RATE)
                    out.mux(audio.encode(piece))
                out.mux(audio.encode(None))
        return Path(path).read_bytes()


def make_webm(frames: FrameMaker, count: int, fps: int, audio_seconds: float) -> bytes:
    """A VP8 + Opus WebM (what browsers record): sound at 48 kHz stereo, a tone on both channels."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=fps)
        first = frames(0)
        video.height, video.width = first.shape[:2]
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(frames(index), format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = np.repeat(tone(audio_seconds, 48000), 2, axis=0)
        for offset in range(0, samples.shape[1], 960):
            piece = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, offset : offset + 960]), format="fltp", layout="stereo"
            )
            piece.sample_rate = 48000
            piece.pts = offset
            out.mux(audio.encode(piece))
        out.mux(audio.encode(None))
    return buffer.getvalue()


def make_gif(frames: FrameMaker, count: int, fps: float) -> bytes:
    """An animated GIF (Pillow), ``fps`` frames per second."""
    pictures = [Image.fromarray(frames(index)) for index in range(count)]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0
    )
    return buffer.getvalue()


def make_audio_only(seconds: float = 1.0) -> bytes:
    """An M4A with a sine tone and no picture."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tone.m4a")
        with av.open(path, "w", format="mp4") as out:
            audio = out.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
            samples = tone(seconds)
            for offset in range(0, samples.shape[1], 1024):
                piece = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, offset : offset + 1024]), format="fltp", layout="mono"
                )
                piece.sample_rate = AUDIO_RATE
                piece.pts = offset
                out.mux(audio.encode(piece))
            out.mux(audio.encode(None))
        return Path(path).read_bytes()


def make_8k() -> bytes:
    """One black 7680x4320 frame (MJPEG in Matroska: quick to write)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        video = out.add_stream("mjpeg", rate=1)
        video.width, video.height, video.pix_fmt = 7680, 4320, "yuvj420p"
        frame = av.VideoFrame(7680, 4320, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return buffer.getvalue()


def _black_frames(codec: str, size: tuple[int, int], first: int, count: int, fps: int) -> list[av.Packet]:
    """``count`` black frames of ``size`` (W, H) encoded alone with ``codec``, their pts from ``first`` (1 / fps)."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    packets: list[av.Packet] = []
    for index in range(first, first + count):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = index
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return packets


def make_growing_clip(
    small: tuple[int, int] = (320, 240), big: tuple[int, int] = (7680, 4320), small_frames: int = 6, fps: int = 12
) -> bytes:
    """A VP8 WebM whose header and first ``small_frames`` frames are ``small`` (W, H) and whose last frame is ``big``.

    VP8 key frames carry their own size and the decoder follows them, so only decoding reveals the big frame: two
    encoders' packets put one after the other in one stream.
    """
    packets = _black_frames("libvpx", small, 0, small_frames, fps) + _black_frames("libvpx", big, small_frames, 1, fps)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = small[0], small[1], "yuv420p"
        for packet in packets:
            packet.stream = stream
            packet.time_base = Fraction(1, fps)
            out.mux(packet)
    return buffer.getvalue()


def make_other_clip(container_format: str, codec: str, frames: int = 3, fps: int = 12) -> bytes:
    """A tiny black clip of ``codec`` in ``container_format`` (for what is outside the allow-lists)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def remux(data: bytes, container_format: str) -> bytes:
    """The same streams in another container (no re-encoding)."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(buffer, "w", format=container_format) as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return buffer.getvalue()


def claim_ten_hours(mp4: bytes) -> bytes:
    """The clip as Matroska whose segment header claims a duration of 10 hours (MP4 readers recount the samples,
    Matroska ones believe the header)."""
    data = bytearray(remux(mp4, "matroska"))
    at = data.index(b"\x44\x89")  # the Duration element: a float, in TimecodeScale units (1 ms by default)
    size = data[at + 2] & 0x7F
    data[at + 3 : at + 3 + size] = struct.pack(">d" if size == 8 else ">f", 10 * 3600 * 1000.0)
    return bytes(data)


def frames_of(data: bytes) -> Iterator[np.ndarray]:
    """Every decoded frame of a clip as (H, W, 3) uint8 (test-side reader)."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def describe(data: bytes) -> dict[str, object]:
    """What a reader sees in a clip: streams, codec, pixel format, size, frames, durations, audio start."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(video)]
    with av.open(io.BytesIO(data)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_info: dict[str, object] = {}
        if audio is not None:
            samples = [frame.to_ndarray() for frame in container.decode(audio)]
            pcm = np.concatenate(samples, axis=1) if samples else np.zeros((1, 0), np.float32)
            audio_info = {
                "audio_codec": audio.codec_context.name,
                "audio_rate": audio.codec_context.sample_rate,
                "audio_seconds": pcm.shape[1] / audio.codec_context.sample_rate,
                "audio_pcm": pcm,
            }
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        info = {
            "format": container.format.name,
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "frames": len(times),
            "times": times,
            "fps": float(video.average_rate) if video.average_rate else None,
            "has_audio": audio is not None,
            **audio_info,
        }
    return info
