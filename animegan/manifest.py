"""The weights manifest: which weight files exist, which styles they make, and which are installed.

Reads ``weights/manifest.toml`` and looks at the weights folder; imports no torch, so front ends can list styles
cheaply.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import platformdirs

from animegan.errors import UnknownStyle

PACKAGED_MANIFEST = Path(__file__).with_name("manifest.toml")
SOURCE_TREE_MANIFEST = Path(__file__).resolve().parents[1] / "weights" / "manifest.toml"
FINISHES = ("shinkai", "none")
ARCHITECTURES = ("animeganv2", "animeganv3")


@dataclass(frozen=True)
class ModelFile:
    """One pinned weight file. ``sha256`` is empty for files whose hash could not be pinned yet."""

    name: str
    file: str
    architecture: str
    sha256: str
    url: str
    licence: str
    trained_size: int
    source: str
    bytes: int | None = None

    def path(self, weights_dir: Path) -> Path:
        """Where the installed file lives."""
        return weights_dir / self.file

    def is_installed(self, weights_dir: Path) -> bool:
        """True when the file is present (its hash is checked by ``verify``, not here: this runs on every listing)."""
        return self.path(weights_dir).is_file()


@dataclass(frozen=True)
class Style:
    """A look a person can choose: a scene model, an optional face model, and finishing filters."""

    name: str
    title: str
    description: str
    scene_model: ModelFile
    face_model: ModelFile | None
    finish: str
    default: bool = False
    installed: bool = False

    @property
    def models(self) -> tuple[ModelFile, ...]:
        """Every weight file this style needs."""
        return tuple(dict.fromkeys(m for m in (self.scene_model, self.face_model) if m is not None))

    @property
    def licence(self) -> str:
        """The licences of its weights, joined."""
        return "; ".join(sorted({model.licence for model in self.models}))


@dataclass(frozen=True)
class Manifest:
    """Everything in ``manifest.toml``."""

    models: dict[str, ModelFile]
    styles: dict[str, Style]

    @property
    def default_style(self) -> str:
        """The style used when none is named (Shinkai)."""
        return next(name for name, style in self.styles.items() if style.default)


def default_weights_dir() -> Path:
    """The user cache folder weights are installed into (``ANIMEBOT_WEIGHTS_DIR`` overrides it)."""
    override = os.environ.get("ANIMEBOT_WEIGHTS_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("animebot")) / "weights"


def manifest_path() -> Path:
    """The manifest inside an installed wheel, else the one in the source tree."""
    return PACKAGED_MANIFEST if PACKAGED_MANIFEST.is_file() else SOURCE_TREE_MANIFEST


@cache
def load_manifest(path: Path | None = None) -> Manifest:
    """Parse and check the manifest; a broken manifest is a bug, so it raises ``ValueError``."""
    raw = tomllib.loads((path or manifest_path()).read_text(encoding="utf-8"))
    models = {name: ModelFile(name=name, **entry) for name, entry in raw["models"].items()}
    styles: dict[str, Style] = {}
    for name, entry in raw["styles"].items():
        face = entry.get("face_model")
        styles[name] = Style(
            name=name,
            title=entry["title"],
            description=entry["description"],
            scene_model=models[entry["scene_model"]],
            face_model=models[face] if face else None,
            finish=entry["finish"],
            default=entry.get("default", False),
        )
    for model in models.values():
        if model.architecture not in ARCHITECTURES:
            raise ValueError(f"model {model.name}: unknown architecture {model.architecture!r}")
    for style in styles.values():
        if style.finish not in FINISHES:
            raise ValueError(f"style {style.name}: unknown finish {style.finish!r}")
    if sum(style.default for style in styles.values()) != 1:
        raise ValueError("exactly one style must be the default")
    return Manifest(models=models, styles=styles)


def list_styles(weights_dir: Path | None = None) -> list[Style]:
    """Every style, default first, each marked installed or not."""
    folder = weights_dir or default_weights_dir()
    styles = [
        Style(**{**style.__dict__, "installed": all(m.is_installed(folder) for m in style.models)})
        for style in load_manifest().styles.values()
    ]
    return sorted(styles, key=lambda style: not style.default)


def installed_styles(weights_dir: Path | None = None) -> list[Style]:
    """The styles that can run now: exactly those whose weights are installed."""
    return [style for style in list_styles(weights_dir) if style.installed]


def find_style(name: str, weights_dir: Path | None = None) -> Style:
    """The style called ``name`` (case-insensitive); ``UnknownStyle`` lists the choices."""
    styles = {style.name: style for style in list_styles(weights_dir)}
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in styles:
        raise UnknownStyle(f"There is no style called “{name}”. Styles: {', '.join(styles)}.")
    return styles[key]
