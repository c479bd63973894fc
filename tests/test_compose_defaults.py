"""compose.yaml's defaults are the safe ones, read without podman: the web port on loopback only, Redis behind a
password the operator must choose, Redis bounded by ``maxmemory`` (still ``noeviction``), and a memory limit on
every service. tests/test_containers.py brings the same file up for real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"
PASSWORD = "0123abcd"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}: the forms compose.yaml uses.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}")


class MissingVariable(Exception):
    """A ``${NAME:?message}`` whose variable is not set: compose refuses to start with ``message``."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` (a loaded compose file or part of it) with its variables replaced as compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, op, word = match["name"], match["op"], match["word"]
        found = env.get(name)
        unset = found is None or (found == "" and op is not None and op.startswith(":"))
        if not unset:
            return str(found)
        if op is not None and op.endswith("?"):
            raise MissingVariable(f"{name}: {word}")
        return word if op is not None else ""

    return VARIABLE.sub(resolve, value)


def services(env: dict[str, str]) -> dict[str, Any]:
    """compose.yaml's services as ``up`` would see them with ``env`` as the environment."""
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env)["services"]


def option(command: list[str], name: str) -> str | None:
    """The value after ``name`` in a command line, or ``None``."""
    return command[command.index(name) + 1] if name in command else None


def test_the_web_port_is_published_on_loopback_only_by_default() -> None:
    (published,) = services({"ANIMEBOT_REDIS_PASSWORD": PASSWORD})["bot"]["ports"]
    assert published == "127.0.0.1:8080:8080"
    public = {"ANIMEBOT_REDIS_PASSWORD": PASSWORD, "ANIMEBOT_PUBLISH_ADDRESS": "0.0.0.0"}
    assert services(public)["bot"]["ports"] == ["0.0.0.0:8080:8080"]  # the operator's choice, documented


def test_compose_refuses_to_start_without_a_redis_password() -> None:
    with pytest.raises(MissingVariable, match=r"ANIMEBOT_REDIS_PASSWORD: set it in \.env"):
        services({})
    with pytest.raises(MissingVariable):
        services({"ANIMEBOT_REDIS_PASSWORD": ""})  # an empty password is no password


def test_redis_asks_for_the_password_the_services_and_the_healthcheck_are_given() -> None:
    resolved = services({"ANIMEBOT_REDIS_PASSWORD": PASSWORD})
    redis = resolved["redis"]
    assert option(redis["command"], "--requirepass") == PASSWORD
    assert redis["environment"]["REDISCLI_AUTH"] == PASSWORD  # redis-cli's own variable: the healthcheck's password
    assert "PONG" in " ".join(redis["healthcheck"]["test"])  # redis-cli exits 0 on NOAUTH too: look for the PONG
    for name in ("bot", "worker"):
        assert resolved[name]["environment"]["ANIMEBOT_REDIS_URL"] == f"redis://:{PASSWORD}@redis:6379/0"


def test_redis_memory_is_bounded_and_nothing_is_evicted() -> None:
    command = services({"ANIMEBOT_REDIS_PASSWORD": PASSWORD})["redis"]["command"]
    assert option(command, "--maxmemory") == "1gb"
    assert option(command, "--maxmemory-policy") == "noeviction"
    bigger = services({"ANIMEBOT_REDIS_PASSWORD": PASSWORD, "ANIMEBOT_REDIS_MAXMEMORY": "4gb"})
    assert option(bigger["redis"]["command"], "--maxmemory") == "4gb"


def test_every_service_has_a_memory_limit() -> None:
    for name, service in services({"ANIMEBOT_REDIS_PASSWORD": PASSWORD}).items():
        limit = service.get("mem_limit") or service.get("deploy", {}).get("resources", {}).get("limits", {}).get(
            "memory"
        )
        assert re.fullmatch(r"\d+[kmg]b?", str(limit or "").lower()), f"{name} has no memory limit"
