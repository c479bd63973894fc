"""Installing and checking weight files: ``pull`` from a mirror folder or the upstream URL, ``verify`` by sha256.

Downloads go to a temporary file beside the target and are renamed only once their size and sha256 match, so a
partial download never looks installed.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from animegan.errors import WeightsCorrupt, WeightsMissing
from animegan.manifest import ModelFile, Style, load_manifest

CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60
LOCAL_PINS_FILE = "local-pins.txt"


@dataclass(frozen=True)
class PullResult:
    """What ``pull_model`` did for one file."""

    model: ModelFile
    path: Path
    action: str  # "already installed" | "copied from mirror" | "downloaded"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(model: ModelFile, weights_dir: Path) -> str:
    """The manifest's pin, or the pin recorded locally for an unpinned file accepted by the user."""
    if model.sha256:
        return model.sha256
    pins = weights_dir / LOCAL_PINS_FILE
    if pins.is_file():
        for line in pins.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if name == model.file:
                return digest
    return ""


def verify_model(model: ModelFile, weights_dir: Path) -> Path:
    """The installed file's path after checking its hash; ``WeightsMissing``/``WeightsCorrupt`` say how to fix it."""
    path = model.path(weights_dir)
    if not path.is_file():
        raise WeightsMissing(
            f"The weights {model.file} are not installed. Install them with: animebot weights pull {model.name}"
        )
    want = expected_sha256(model, weights_dir)
    if want and sha256_of(path) != want:
        raise WeightsCorrupt(
            f"{path} does not match its sha256 pin (damaged or replaced). Delete it and run: "
            f"animebot weights pull {model.name}"
        )
    return path


def _fetch(model: ModelFile, target: Path, mirror: Path | None, progress: bool) -> str:
    """Copy or download ``model`` into ``target``; returns the action taken."""
    if mirror is not None:
        source = mirror / model.file
        if not source.is_file():
            raise WeightsMissing(
                f"{model.file} is not in the mirror folder {mirror}. Put it there, or unset "
                f"ANIMEBOT_WEIGHTS_MIRROR to download it from {model.url}"
            )
        shutil.copyfile(source, target)
        return "copied from mirror"
    try:
        with requests.get(model.url, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or model.bytes
            with (
                target.open("wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=model.file, disable=not progress) as bar,
            ):
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as error:
        raise WeightsMissing(
            f"Could not download {model.file} from {model.url} ({type(error).__name__}). Check the network and "
            f"try again, or download it by hand and use: ANIMEBOT_WEIGHTS_MIRROR=FOLDER animebot weights pull"
        ) from error
    return "downloaded"


def pull_model(
    model: ModelFile,
    weights_dir: Path,
    mirror: Path | None = None,
    progress: bool = True,
    accept_unpinned: bool = False,
) -> PullResult:
    """Install one weight file, checking its size and sha256 before it is renamed into place."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = model.path(weights_dir)
    want = expected_sha256(model, weights_dir)
    if path.is_file() and want and sha256_of(path) == want:
        return PullResult(model, path, "already installed")
    partial = path.with_name(path.name + ".part")
    try:
        action = _fetch(model, partial, mirror, progress)
        got = sha256_of(partial)
        if model.bytes is not None and partial.stat().st_size != model.bytes:
            raise WeightsCorrupt(
                f"{model.file}: got {partial.stat().st_size} bytes, expected {model.bytes} (a partial download?). "
                f"Run the pull again."
            )
        if want and got != want:
            raise WeightsCorrupt(
                f"{model.file}: sha256 {got} does not match the pinned {want}. The file is not the one this "
                f"release was tested with; it was not installed."
            )
        if not want:
            if not accept_unpinned:
                raise WeightsCorrupt(
                    f"{model.file} has no sha256 pin in the manifest; the downloaded file has sha256 {got}. "
                    f"If you trust it, run again with --accept-unpinned to install it and record this hash."
                )
            with (weights_dir / LOCAL_PINS_FILE).open("a") as pins:
                pins.write(f"{got}  {model.file}\n")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return PullResult(model, path, action)


def models_for(styles: Iterable[Style]) -> list[ModelFile]:
    """The distinct weight files behind some styles, in order."""
    return list(dict.fromkeys(model for style in styles for model in style.models))


def resolve_models(names: Iterable[str]) -> list[ModelFile]:
    """Models named directly or through a style name; every pinned model when ``names`` is empty."""
    manifest = load_manifest()
    wanted = list(names)
    if not wanted:
        return [model for model in manifest.models.values() if model.sha256]
    found: list[ModelFile] = []
    for name in wanted:
        if name in manifest.styles:
            found.extend(manifest.styles[name].models)
        elif name in manifest.models:
            found.append(manifest.models[name])
        else:
            choices = ", ".join([*manifest.styles, *manifest.models])
            raise WeightsMissing(f"Nothing called “{name}” in the manifest. Choose from: {choices}.")
    return list(dict.fromkeys(found))


def pull(
    names: Iterable[str],
    weights_dir: Path,
    mirror: Path | None = None,
    progress: bool = True,
    accept_unpinned: bool = False,
    on_result: Callable[[PullResult], None] | None = None,
) -> list[PullResult]:
    """Install the weights of the named styles or models (all pinned ones by default)."""
    results = []
    for model in resolve_models(names):
        result = pull_model(model, weights_dir, mirror, progress, accept_unpinned)
        if on_result:
            on_result(result)
        results.append(result)
    return results
