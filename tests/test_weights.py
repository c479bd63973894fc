"""Weights you can trust: pull from a mirror or URL, sha256 pins, partial and corrupt files, unpinned files."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from animegan.errors import WeightsCorrupt, WeightsMissing
from animegan.manifest import ModelFile, installed_styles, list_styles, load_manifest
from animegan.weights import pull, pull_model, sha256_of, verify_model
from bot.cli import main

SHINKAI = load_manifest().models["animeganv3_shinkai"]


@pytest.fixture()
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a folder, standing in for the upstream URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


def test_manifest_pins_match_the_mirror_files(weights_mirror: Path) -> None:
    sums = dict(line.split()[::-1] for line in (weights_mirror / "SHA256SUMS").read_text().splitlines())
    pinned = [model for model in load_manifest().models.values() if model.sha256]
    assert len(pinned) == 5
    for model in pinned:
        assert sums[model.file] == model.sha256 == sha256_of(weights_mirror / model.file)
        assert (weights_mirror / model.file).stat().st_size == model.bytes


def test_pull_from_mirror_then_verify(weights_mirror: Path, tmp_path: Path) -> None:
    results = pull(["shinkai"], tmp_path, mirror=weights_mirror, progress=False)
    assert [r.action for r in results] == ["copied from mirror"]
    assert verify_model(SHINKAI, tmp_path) == tmp_path / SHINKAI.file
    again = pull(["shinkai"], tmp_path, mirror=weights_mirror, progress=False)
    assert [r.action for r in again] == ["already installed"]


def test_styles_offered_are_exactly_the_installed_ones(weights_mirror: Path, tmp_path: Path) -> None:
    assert installed_styles(tmp_path) == []
    pull(["hayao"], tmp_path, mirror=weights_mirror, progress=False)
    assert [s.name for s in installed_styles(tmp_path)] == ["hayao"]
    listed = {s.name: s.installed for s in list_styles(tmp_path)}
    assert listed["shinkai"] is False and listed["hayao"] is True
    assert list_styles(tmp_path)[0].name == "shinkai"  # the default comes first


def test_wrong_hash_is_refused_and_nothing_installed(weights_mirror: Path, tmp_path: Path) -> None:
    bad_mirror = tmp_path / "mirror"
    bad_mirror.mkdir()
    data = bytearray((weights_mirror / SHINKAI.file).read_bytes())
    data[1000] ^= 0xFF
    (bad_mirror / SHINKAI.file).write_bytes(bytes(data))
    target = tmp_path / "weights"
    with pytest.raises(WeightsCorrupt, match="does not match the pinned"):
        pull_model(SHINKAI, target, mirror=bad_mirror, progress=False)
    assert not (target / SHINKAI.file).exists()
    assert list(target.iterdir()) == []  # no partial file left behind


def test_partial_file_is_refused(weights_mirror: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / SHINKAI.file).write_bytes((weights_mirror / SHINKAI.file).read_bytes()[:5000])
    with pytest.raises(WeightsCorrupt, match="partial download"):
        pull_model(SHINKAI, tmp_path / "weights", mirror=mirror, progress=False)


def test_file_missing_from_mirror_says_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing, match="not in the mirror folder"):
        pull_model(SHINKAI, tmp_path / "w", mirror=tmp_path, progress=False)


def test_verify_catches_a_damaged_install(weights_mirror: Path, tmp_path: Path) -> None:
    pull(["shinkai"], tmp_path, mirror=weights_mirror, progress=False)
    with (tmp_path / SHINKAI.file).open("r+b") as handle:
        handle.seek(10)
        handle.write(b"\0\0\0\0")
    with pytest.raises(WeightsCorrupt, match="animebot weights pull animeganv3_shinkai"):
        verify_model(SHINKAI, tmp_path)
    with pytest.raises(WeightsMissing, match="animebot weights pull"):
        verify_model(load_manifest().models["animeganv3_hayao"], tmp_path)


def test_download_from_url_over_http(weights_mirror: Path, tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base, served = http_folder
    shutil.copyfile(weights_mirror / SHINKAI.file, served / SHINKAI.file)
    model = dataclasses.replace(SHINKAI, url=f"{base}/{SHINKAI.file}")
    result = pull_model(model, tmp_path / "w", progress=False)
    assert result.action == "downloaded"
    assert sha256_of(result.path) == SHINKAI.sha256


def test_download_failure_is_a_clear_message(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base, _ = http_folder
    model = dataclasses.replace(SHINKAI, url=f"{base}/nothing-here.onnx")
    with pytest.raises(WeightsMissing, match="Could not download"):
        pull_model(model, tmp_path / "w", progress=False)


def test_unpinned_file_needs_explicit_acceptance(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base, served = http_folder
    (served / "face.pt").write_bytes(b"pretend weights")
    model = ModelFile(
        name="face",
        file="face.pt",
        architecture="animeganv2",
        sha256="",
        url=f"{base}/face.pt",
        licence="test",
        trained_size=512,
        source="test",
    )
    folder = tmp_path / "w"
    with pytest.raises(WeightsCorrupt, match="--accept-unpinned"):
        pull_model(model, folder, progress=False)
    assert not (folder / "face.pt").exists()
    pull_model(model, folder, progress=False, accept_unpinned=True)
    verify_model(model, folder)  # now pinned locally
    (folder / "face.pt").write_bytes(b"something else")
    with pytest.raises(WeightsCorrupt):
        verify_model(model, folder)


def test_cli_pull_list_verify(
    weights_mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANIMEBOT_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("ANIMEBOT_WEIGHTS_MIRROR", str(weights_mirror))
    assert main(["weights", "pull", "hayao", "-q"]) == 0
    assert main(["weights", "verify", "hayao"]) == 0
    assert main(["weights", "list"]) == 0
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert "animeganv3_hayao_36_fp16.onnx: copied from mirror" in out
    assert "animeganv3_hayao_36_fp16.onnx: ok" in out
    assert "hayao       installed" in out and "shinkai     not installed" in out
    assert "non-commercial" in out
    assert list((tmp_path / "converted").glob("animeganv3_hayao-*.safetensors"))  # converted at pull time,
    assert list((tmp_path / "compiled").glob("animeganv3_hayao-*.xml"))  # and prepared for the fast path
    assert main(["weights", "verify", "shinkai"]) == 1
    assert "animebot weights pull animeganv3_shinkai" in capsys.readouterr().err
