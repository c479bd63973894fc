"""Podman for the container tests, set up as ../shared/CONTAINERS.md says: runc and no default ulimits (this
sandbox needs both), overlay storage kept between runs, and stand-in base images made from Debian packages,
because no registry can be reached. The config files are the test's own (CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF), so the machine's configuration is left as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PYTHON_BASE = "docker.io/library/python:3.11-slim-bookworm"
REDIS_BASE = "docker.io/library/redis:7.0"  # Debian bookworm's redis-server is 7.0, like this tag
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates,redis-server"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINERS_CONF = """[containers]
default_ulimits = []

[engine]
runtime = "runc"
"""
STORAGE_CONF = """[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/overlay-storage"
"""


def missing_tools() -> list[str]:
    """The programs the container tests need that this machine lacks."""
    tools = {
        "podman": shutil.which("podman"),
        "runc": shutil.which("runc") or shutil.which("runc", path="/usr/sbin"),
        "debootstrap": shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin"),
        "podman-compose": compose_command()[0] if compose_command() else None,
    }
    return [name for name, path in tools.items() if path is None]


def compose_command() -> list[str] | None:
    """podman-compose from this Python's environment (a test dependency), or on PATH."""
    beside = Path(sys.executable).with_name("podman-compose")
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    return [found] if found else None


def podman_environment(folder: Path) -> dict[str, str]:
    """The environment every podman call of the tests runs with (config files written into ``folder``)."""
    containers, storage = folder / "containers.conf", folder / "storage.conf"
    containers.write_text(CONTAINERS_CONF)
    storage.write_text(STORAGE_CONF)
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return {**os.environ, "CONTAINERS_CONF": str(containers), "CONTAINERS_STORAGE_CONF": str(storage), "PATH": path}


def run(command: list[str], env: dict[str, str], log: Path, timeout: float, cwd: Path | None = None) -> None:
    """Run ``command``, its output appended to ``log``; raises with the log's tail when it fails."""
    with log.open("ab") as output:
        output.write(f"\n$ {' '.join(command)}\n".encode())
        output.flush()
        finished = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=timeout, cwd=cwd)
    if finished.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise AssertionError(f"{command[:3]} failed with exit code {finished.returncode}:\n{tail}")


def image_exists(name: str, env: dict[str, str]) -> bool:
    """True when podman's storage holds the image ``name``."""
    return subprocess.run(["podman", "image", "exists", name], env=env).returncode == 0


def ensure_base_images(env: dict[str, str], work: Path, log: Path) -> None:
    """Make the stand-in base images from Debian packages unless a previous run left them (about 2.5 minutes).

    Only this stand-in carries the machine's CA bundle: the registries are reached through a proxy only it
    trusts. Real users pull the real base images.
    """
    if not image_exists(PYTHON_BASE, env):
        rootfs = work / "rootfs"
        run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(rootfs)],
            env,
            log,
            timeout=900,
        )
        shutil.copy(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        archive = work / "rootfs.tar"
        run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], env, log, timeout=300)
        run(
            [
                "podman",
                "import",
                "--change",
                f"ENV PIP_CERT={HOST_CA_BUNDLE}",
                "--change",
                f"ENV SSL_CERT_FILE={HOST_CA_BUNDLE}",
                str(archive),
                PYTHON_BASE,
            ],
            env,
            log,
            timeout=300,
        )
        shutil.rmtree(rootfs, ignore_errors=True)
        archive.unlink()
    if not image_exists(REDIS_BASE, env):
        run(["podman", "tag", PYTHON_BASE, REDIS_BASE], env, log, timeout=60)
