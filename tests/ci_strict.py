"""In CI, a skipped test is a failed one: every prerequisite (Chromium, redis-server, podman, the weights, codecs)
must be there, so a green run means every test ran. Locally a skip stays a skip, and its reason is listed.

CI is recognised by ``CI`` set to anything but an empty or false value (``true``, ``1``, ``yes``...), or by a
known runner's own variable where a runner does not set ``CI``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import pytest

RUNNER_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "DRONE",
    "WOODPECKER_CI",
)
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this run is a CI run (see the module's docstring)."""
    if environ.get("CI", "").strip().lower() not in FALSE_VALUES:
        return True
    return any(environ.get(name) for name in RUNNER_VARIABLES)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Turn a skip into a failure in CI (an expected failure, ``xfail``, stays what it is)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]  # pluggy's wrapper result; untyped in pytest
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every prerequisite must be installed: {reason}"
