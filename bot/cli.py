"""``animebot``: stylize photos, list styles, manage weights, and serve the web UI and chat bots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from animegan.cpu import PRECISION_HELP
from animegan.errors import AnimeganError
from animegan.manifest import default_weights_dir, list_styles, load_manifest
from animegan.weights import PullResult, pull, resolve_models, verify_model
from bot.clips import looks_like_clip
from bot.config import Settings

if TYPE_CHECKING:
    from animegan.clip import ClipLimits

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv"}
FORMAT_SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
FORMAT_ALIASES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}


def _weights_dir(settings: Settings) -> Path:
    return settings.weights_dir or default_weights_dir()


def _photos(inputs: Sequence[Path]) -> list[Path]:
    """The photos named, with folders expanded to the images directly inside them."""
    photos: list[Path] = []
    for path in inputs:
        if path.is_dir():
            photos.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        else:
            photos.append(path)
    return photos


def _output_path(photo: Path, out: Path | None, many: bool, style: str, mime: str) -> Path:
    suffix = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4"}[mime]
    name = f"{photo.stem}_{style}{suffix}"
    if out is None:
        return photo.with_name(name)
    if many or out.is_dir() or not out.suffix:
        out.mkdir(parents=True, exist_ok=True)
        return out / name
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def cmd_stylize(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from animegan.engine import Engine

    photos = _photos(args.photos)
    if not photos:
        print("No photos found in: " + ", ".join(map(str, args.photos)), file=sys.stderr)
        return 2
    engine = Engine(_weights_dir(settings), args.precision or settings.precision, settings.working_size)
    style = engine.style(args.style or settings.default_style).name
    many = len(photos) > 1 or any(p.is_dir() for p in args.photos)
    failures = 0
    for photo in tqdm(photos, unit="photo", disable=not many or args.quiet):
        try:
            data = photo.read_bytes()
            if looks_like_clip(data):
                result = engine.stylize_clip_bytes(
                    data, style, args.strength, not args.no_faces, _clip_limits(settings)
                )
            else:
                result = engine.stylize_bytes(data, style, args.strength, not args.no_faces, args.format, args.size)
        except (AnimeganError, OSError) as error:
            failures += 1
            tqdm.write(f"{photo}: {getattr(error, 'message', None) or error}", file=sys.stderr)
            continue
        target = _output_path(photo, args.output, many, style, result.mime)
        target.write_bytes(result.data)
        for note in result.notes:
            tqdm.write(f"{photo}: {note}")
        if not args.quiet:
            tqdm.write(f"{photo} -> {target} ({result.width}x{result.height}, {result.faces} face(s))")
    return 1 if failures else 0


def _clip_limits(settings: Settings) -> ClipLimits:
    from animegan.clip import ClipLimits

    return ClipLimits(settings.clip_max_seconds, settings.clip_max_fps, settings.clip_side)


def cmd_styles(args: argparse.Namespace, settings: Settings) -> int:
    styles = list_styles(_weights_dir(settings))
    width = max(len(style.name) for style in styles)
    for style in styles:
        state = "installed" if style.installed else "not installed"
        default = " (default)" if style.default else ""
        print(f"{style.name:<{width}}  {state:<13}  {style.title}{default}: {style.description}")
        print(f"{'':<{width}}  licence: {style.licence}")
    if not all(style.installed for style in styles):
        print("\nInstall a style with: animebot weights pull STYLE")
    return 0


def _print_pull(result: PullResult) -> None:
    print(f"{result.model.file}: {result.action}")


def cmd_weights(args: argparse.Namespace, settings: Settings) -> int:
    folder = _weights_dir(settings)
    if args.action == "pull":
        mirror = args.mirror or settings.weights_mirror
        pull(
            args.names,
            folder,
            mirror,
            progress=not args.quiet,
            accept_unpinned=args.accept_unpinned,
            on_result=_print_pull,
        )
        _prepare(args.names, folder, settings.precision)
        print(f"Weights are in {folder}")
        return 0
    models = resolve_models(args.names) if args.names else list(load_manifest().models.values())
    failures = 0
    for model in models:
        if args.action == "list":
            state = "installed" if model.is_installed(folder) else "not installed"
            print(f"{model.name:<28} {state:<13} {model.file}  ({model.licence})")
        elif not args.names and not model.is_installed(folder):
            print(f"{model.file}: not installed")
        else:
            try:
                verify_model(model, folder)
                print(f"{model.file}: ok")
            except AnimeganError as error:
                failures += 1
                print(error.message, file=sys.stderr)
    return 1 if failures else 0


def _prepare(names: Sequence[str], folder: Path, precision: str) -> None:
    """Convert freshly pulled files now (safetensors, then the fast-path model) and, for precision auto, measure
    which path is fastest on this CPU, so the first photo does not wait."""
    from animegan.engine import Engine

    engine = Engine(folder, precision)  # type: ignore[arg-type]
    for model in resolve_models(names):
        if model.is_installed(folder):
            engine.generator(model)
    for name, path in engine.precision_report().items():
        print(f"{name}: {path}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    if args.pull:
        folder = _weights_dir(settings)
        pull([], folder, settings.weights_mirror, progress=not args.quiet, on_result=_print_pull)
        _prepare([], folder, settings.precision)
    return serve(settings)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve, work

    if args.pull:
        folder = _weights_dir(settings)
        pull([], folder, settings.weights_mirror, progress=not args.quiet, on_result=_print_pull)
        _prepare([], folder, settings.precision)
    return serve(settings, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="animebot",
        description="Turn photos into anime pictures (Makoto Shinkai look by default). Settings come from "
        "ANIMEBOT_* environment variables or a .env file (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    stylize = commands.add_parser("stylize", help="stylize photos, clips (MP4, MOV, WebM, animated GIF) or folders")
    stylize.add_argument(
        "photos",
        nargs="+",
        type=Path,
        metavar="PHOTO",
        help="image or video files, or folders "
        "(a clip becomes NAME_STYLE.mp4 with its sound, cut to ANIMEBOT_CLIP_MAX_SECONDS)",
    )
    stylize.add_argument(
        "-o", "--output", type=Path, help="output file (one photo) or folder (default: beside each photo)"
    )
    stylize.add_argument("--style", help="style name (see `animebot styles`; default: shinkai)")
    stylize.add_argument(
        "--strength", type=float, default=1.0, help="0 keeps the photo, 1 is the full style (default 1)"
    )
    stylize.add_argument("--no-faces", action="store_true", help="skip the face pass (face2paint)")
    stylize.add_argument(
        "--size", type=int, help="long side of the output in px (default: working size 1024, max 4096)"
    )
    stylize.add_argument(
        "--format",
        type=lambda v: FORMAT_ALIASES[v.lower()],
        choices=sorted(set(FORMAT_ALIASES.values())),
        help="jpg, png or webp (default: png for images with transparency, else jpg)",
    )
    stylize.add_argument(
        "--precision",
        choices=list(PRECISION_HELP),
        help="generator precision (default ANIMEBOT_PRECISION, auto): "
        + "; ".join(f"{name}: {meaning}" for name, meaning in PRECISION_HELP.items()),
    )
    stylize.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    stylize.set_defaults(run=cmd_stylize)

    styles = commands.add_parser("styles", help="list styles, installed or not, with their licences")
    styles.set_defaults(run=cmd_styles)

    weights = commands.add_parser("weights", help="list, pull or verify weight files")
    weights.add_argument("action", choices=["list", "pull", "verify"])
    weights.add_argument("names", nargs="*", metavar="STYLE", help="styles or models (default: all pinned ones)")
    weights.add_argument(
        "--mirror", type=Path, help="folder to copy files from (default ANIMEBOT_WEIGHTS_MIRROR, else download)"
    )
    weights.add_argument("--accept-unpinned", action="store_true", help="install files the manifest has no sha256 for")
    weights.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    weights.set_defaults(run=cmd_weights)

    serve = commands.add_parser("serve", help="start the web UI + API, and Telegram/Discord when their tokens are set")
    serve.add_argument("--pull", action="store_true", help="first pull any missing pinned weights (the container does)")
    serve.add_argument("-q", "--quiet", action="store_true", help="no download progress bar")
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", help="run a worker host: stylize jobs from ANIMEBOT_REDIS_URL")
    worker.add_argument(
        "--pull", action="store_true", help="first pull any missing pinned weights (the container does)"
    )
    worker.add_argument("-q", "--quiet", action="store_true", help="no download progress bar")
    worker.set_defaults(run=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        code: int = args.run(args, settings)
        return code
    except AnimeganError as error:
        print(error.message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
