"""Clips out with PyAV: H.264 segments (yuv420p) and their join into one faststart MP4 with the clip's own sound.

Segments carry their frames' global timestamps (frame k at k / fps) and have no B-frames, so joining them is
copying packets one after the other. The sound is decoded from the source, cut sample by sample to the picture's
time span (silence fills what it leaves, before or after), and encoded as AAC, so it stays in sync whatever the
source's codec and lasts as long as the picture, never longer: however far from the picture a file puts its sound,
at most the clip's length of it (silence included) is ever held.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Final

import av
import av.error
import numpy as np

from animegan.clip import ClipPlan, open_clip, sound_stream

H264_OPTIONS = {"crf": "20", "preset": "veryfast", "bf": "0"}  # no B-frames: segments join by plain pts
AUDIO_CODEC: Final = "aac"
AUDIO_BIT_RATE = 128_000
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
SILENCE_PIECE_SAMPLES = 65536  # silence is written this many samples at a time (256 KB of float32 a channel)
VIDEO_MIME = "video/mp4"


def encode_segment(frames: Iterable[np.ndarray], plan: ClipPlan, first: int) -> bytes:
    """H.264 (yuv420p) MP4 of the given (H, W, 3) uint8 frames, output frames ``first``, ``first + 1``... ."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=plan.fps, options=dict(H264_OPTIONS))
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        for index, pixels in enumerate(frames, start=first):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index  # in the encoder's time base, 1 / fps
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def join_segments(data: bytes, plan: ClipPlan, segments: Sequence[tuple[int, bytes]]) -> bytes:
    """One MP4 (faststart: playable while it downloads) from the segments, with the source's sound when it has one.

    Args:
        data: the source clip (for its sound).
        plan: the clip's plan.
        segments: (first output frame, segment bytes) in order.
    """
    with tempfile.TemporaryDirectory(prefix="animegan-clip-") as folder:
        path = os.path.join(folder, "out.mp4")
        audio = _audio_packets(data, plan) if plan.has_audio else None
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            video = None
            audio_stream: av.AudioStream | None = None
            queued: list[av.Packet[av.AudioStream]] = []
            for first, segment in segments:
                with av.open(io.BytesIO(segment), mode="r") as part:
                    source = part.streams.video[0]
                    time_base = source.time_base
                    assert time_base is not None  # every stream of an MP4 has one
                    if video is None:
                        video = out.add_stream_from_template(source)  # frames were turned upright when read
                        if audio is not None:
                            audio_stream, queued = audio(out)
                    offset = None
                    for packet in part.demux(source):
                        if packet.pts is None:
                            continue
                        if offset is None:
                            offset = int(first / plan.fps / time_base) - packet.pts
                        packet.pts += offset
                        packet.dts = packet.pts if packet.dts is None else packet.dts + offset
                        seconds = float(packet.pts * time_base)
                        while queued and _seconds(queued[0]) <= seconds:
                            _mux(out, queued.pop(0), audio_stream)
                        packet.stream = video
                        out.mux(packet)
            for audio_packet in queued:
                _mux(out, audio_packet, audio_stream)
        with open(path, "rb") as result:
            return result.read()


def _seconds(packet: av.Packet[av.AudioStream]) -> float:
    """When an encoded packet is presented, in seconds."""
    assert packet.pts is not None  # the encoder gives every packet the pts of its samples
    return float(packet.pts * packet.time_base)


def _mux(out: av.container.OutputContainer, packet: av.Packet[av.AudioStream], stream: av.AudioStream | None) -> None:
    if stream is not None:
        packet.stream = stream
        out.mux(packet)


def _audio_packets(
    data: bytes, plan: ClipPlan
) -> Callable[[av.container.OutputContainer], tuple[av.AudioStream, list[av.Packet[av.AudioStream]]]] | None:
    """A function that adds an AAC stream to an output and returns it with the clip's sound encoded, or ``None``.

    The sound is cut to the output's time span (``plan.start`` to ``plan.start + plan.duration``) sample by
    sample, delayed with silence if it starts after the picture, and padded with silence if it ends before, so
    picture and sound stay in sync and last as long as each other.
    """
    with open_clip(data) as container:
        source = sound_stream(container)
        if source is None:
            return None
        rate = source.codec_context.sample_rate or 48000
        if rate not in AAC_RATES:
            rate = 48000
        channels = min(2, source.codec_context.channels or 1)
    layout = "stereo" if channels == 2 else "mono"

    def add(out: av.container.OutputContainer) -> tuple[av.AudioStream, list[av.Packet[av.AudioStream]]]:
        stream = out.add_stream(AUDIO_CODEC, rate=rate)
        stream.layout = layout
        stream.bit_rate = AUDIO_BIT_RATE
        packets: list[av.Packet[av.AudioStream]] = []
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        fifo = av.AudioFifo()
        wanted = round(plan.duration * rate)
        written = 0
        position: int | None = None  # samples of the output timeline
        with open_clip(data) as container:
            try:
                for frame in container.decode(container.streams.audio[0]):  # its codec checked above
                    for piece in resampler.resample(frame):
                        if position is None:
                            begins = piece.time if piece.time is not None else plan.start
                            position = round((begins - plan.start) * rate)
                            if position > 0:  # the sound starts after the picture: silence until then (or the end)
                                written += _write_silence(fifo, min(position, wanted), layout, rate, written)
                        samples = piece.to_ndarray()
                        skip = max(0, -position) if position < 0 else 0
                        position += samples.shape[1]
                        samples = samples[:, skip : skip + max(0, wanted - written)]
                        if samples.shape[1]:
                            fifo.write(_audio_frame(samples, layout, rate, written))
                            written += samples.shape[1]
                    if written >= wanted:
                        break
            except av.error.FFmpegError:  # damaged sound: what was read is kept, silence pads the rest
                pass
        written += _write_silence(fifo, wanted - written, layout, rate, written)  # the sound ended before the picture
        frame_size = stream.codec_context.frame_size or 1024
        pts = 0
        while fifo.samples:
            chunk = fifo.read(min(frame_size, fifo.samples))
            assert chunk is not None  # the fifo holds at least the samples asked for
            chunk.pts = pts
            pts += chunk.samples
            packets.extend(stream.encode(chunk))
        packets.extend(stream.encode(None))
        return stream, packets

    return add


def _write_silence(fifo: av.AudioFifo, samples: int, layout: str, rate: int, pts: int) -> int:
    """Write ``samples`` of silence (none when not positive) in pieces of bounded size; how many were written."""
    channels = 2 if layout == "stereo" else 1
    piece = np.zeros((channels, SILENCE_PIECE_SAMPLES), np.float32)
    for offset in range(0, max(0, samples), SILENCE_PIECE_SAMPLES):
        size = min(SILENCE_PIECE_SAMPLES, samples - offset)
        fifo.write(_audio_frame(piece[:, :size], layout, rate, pts + offset))
    return max(0, samples)


def _audio_frame(samples: np.ndarray, layout: str, rate: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = Fraction(1, rate)
    return frame
