"""A skip is a failure in CI, whatever value the runner gives ``CI``, and visible with its reason elsewhere."""

from __future__ import annotations

import pytest

from tests.ci_strict import RUNNER_VARIABLES

A_SKIPPING_TEST = """
import pytest

def test_needing_redis():
    pytest.skip("redis-server is not installed")

@pytest.mark.xfail(reason="a known bug")
def test_known_bug():
    assert False
"""


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> pytest.MonkeyPatch:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.delenv("CI", raising=False)
    for name in RUNNER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["true", "True", "1", "yes"])
def test_a_skip_fails_when_ci_is_set_to_any_true_value(
    pytester: pytest.Pytester, no_ci: pytest.MonkeyPatch, value: str
) -> None:
    pytester.makepyfile(A_SKIPPING_TEST)
    no_ci.setenv("CI", value)
    result = pytester.runpytest_inprocess("-p", "tests.ci_strict")
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped in CI*redis-server is not installed*"])


def test_a_skip_fails_under_a_runner_that_does_not_set_ci(pytester: pytest.Pytester, no_ci: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(A_SKIPPING_TEST)
    no_ci.setenv("JENKINS_URL", "http://127.0.0.1:8080/")
    pytester.runpytest_inprocess("-p", "tests.ci_strict").assert_outcomes(failed=1, xfailed=1)


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_locally_a_skip_stays_a_skip_and_says_why(
    pytester: pytest.Pytester, no_ci: pytest.MonkeyPatch, value: str | None
) -> None:
    pytester.makepyfile(A_SKIPPING_TEST)
    if value is not None:
        no_ci.setenv("CI", value)
    result = pytester.runpytest_inprocess("-p", "tests.ci_strict", "-rs")
    result.assert_outcomes(skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["SKIPPED*redis-server is not installed*"])
