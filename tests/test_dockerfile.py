"""The Dockerfile can't be built here (no container engine): check what can be checked without one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_every_copied_path_exists() -> None:
    copies = [args for args in instructions("COPY") if not args.startswith("--from")]
    assert copies
    for args in copies:
        *sources, _target = args.split()
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repo"


def test_entry_point_is_the_real_cli_command() -> None:
    (cmd,) = instructions("CMD")
    argv = json.loads(cmd)
    assert argv[0] == "animebot"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.pull
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["tini", "--"]


def test_runs_as_non_root_with_weights_and_data_volumes_and_healthcheck() -> None:
    assert instructions("USER") == ["animebot"]
    assert instructions("VOLUME") == ['["/weights", "/data"]']
    assert "ANIMEBOT_WEIGHTS_DIR=/weights" in DOCKERFILE and "ANIMEBOT_DATA_DIR=/data" in DOCKERFILE
    assert re.search(r"HEALTHCHECK .*\n?.*/healthz", DOCKERFILE)
    assert "ANIMEBOT_HOST=0.0.0.0" in DOCKERFILE  # inside a container, loopback would be unreachable
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE  # CPU-only torch
    assert DOCKERFILE.count("FROM ") == 3  # multi-stage: dependencies, the wheel, the runtime
