"""The Grafana dashboard (deploy/grafana/animebot.json) and the alert rules (deploy/prometheus/alerts.yml) name only
metrics the service exports.

Every PromQL query of the dashboard (panels and template variables) and of the rules is parsed with a real PromQL
parser (``promql-parser``), and each metric it selects must be in the /metrics of a real ``animebot serve``: one on
one box (the in-process pool) and one in the cluster layout (a real ``redis-server``), which together export every
metric. The engine is the scripted stand-in of tests/support_pool.py: the metrics do not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, skip_or_fail
from tests.support_pool import SCRIPTED_ENGINE
from tests.support_redis import RedisServer, free_port, redis_server_binary

DASHBOARD = REPO / "deploy" / "grafana" / "animebot.json"
PROMETHEUS_TIMEOUT = 60.0
# The dashboard's variables as Grafana fills them in (every instance of job "animebot").
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "animebot", "$instance": ".*"}
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
START_TIMEOUT = 120.0
# Grafana's interval variables stand where PromQL wants a duration; any duration parses the same.
GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*\w+\)$")
# The series names each metric type exports (prometheus_client adds the suffixes).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
# What an operator looks for on the dashboard: one panel or more selects each of these.
DASHBOARD_TOPICS = {
    "animebot_queue_depth",
    "animebot_queue_oldest_wait_seconds",
    "animebot_jobs_total",
    "animebot_jobs_accepted_total",
    "animebot_stage_seconds_bucket",
    "animebot_workers_alive",
    "animebot_worker_hosts",
    "animebot_task_up",
    "animebot_task_restarts_total",
    "animebot_worker_restarts_total",
    "animebot_redis_refusals_total",
    "animebot_dead_letters_total",
}


# --- reading the queries ----------------------------------------------------------------------------------------


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query selects (``foo{...}``, ``{__name__="foo"}``), Grafana variables resolved."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(
                matcher.value
                for matcher in node.matchers.matchers
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal
            )

    promql_parser.walk(promql_parser.parse(GRAFANA_DURATIONS.sub("5m", query)), visit)
    return names


def all_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows too."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable (``label_values(selector, label)``)."""
    queries = [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            found = LABEL_VALUES.match(query)
            assert found, f"variable {variable['name']}: unexpected query {query}"
            queries.append((f"variable {variable['name']}", found["selector"]))
    return queries


def rule_queries(rules: dict[str, Any]) -> list[tuple[str, str]]:
    """(alert or record name, PromQL) of every rule."""
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def unexported(queries: list[tuple[str, str]], exported: set[str]) -> dict[str, set[str]]:
    """For each query naming a metric not in ``exported``: where -> the unknown names."""
    missing = {where: metric_names(query) - exported for where, query in queries}
    return {where: names for where, names in missing.items() if names}


# --- a real service's /metrics ----------------------------------------------------------------------------------


def exported_series(metrics_text: str) -> set[str]:
    """Every series name a /metrics text exports, families without samples yet included (by their type)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def serve_environment(port: int, folder: Path, **more: str) -> dict[str, str]:
    """``animebot serve`` with the web front end only, one scripted worker, its own data folder."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ANIMEBOT_")}
    (folder / "weights").mkdir(parents=True)
    return {
        **environment,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "ANIMEBOT_HOST": "127.0.0.1",
        "ANIMEBOT_PORT": str(port),
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_ENGINE_FACTORY": SCRIPTED_ENGINE,
        "ANIMEBOT_WEIGHTS_DIR": str(folder / "weights"),
        "ANIMEBOT_DATA_DIR": str(folder),
        **more,
    }


def scrape_when(port: int, process: subprocess.Popen[bytes], ready: str) -> str:
    """The /metrics text of the process on ``port`` once it holds ``ready`` (the service's numbers are in)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "animebot serve exited during start-up"
        try:
            response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            if response.status_code == 200 and ready in response.text:
                return response.text
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"animebot serve on port {port} did not export {ready}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within a minute."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Services:
    """``animebot serve`` on one box and in the cluster layout: their web ports and the series each exports."""

    ports: dict[str, int]
    exported: dict[str, set[str]]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """``animebot serve`` on one box and in the cluster layout (started together), running for the module."""
    binary = redis_server_binary()
    if binary is None:
        skip_or_fail("redis-server is not installed (apt-get install redis-server)")
    assert binary is not None
    folder = tmp_path_factory.mktemp("metrics")
    (folder / "redis").mkdir()
    redis = RedisServer(binary, folder / "redis")
    redis.start()
    ports = {"one box": free_port(), "cluster": free_port()}
    environments = {
        "one box": serve_environment(ports["one box"], folder / "one-box"),
        "cluster": serve_environment(ports["cluster"], folder / "cluster", ANIMEBOT_REDIS_URL=redis.url),
    }
    logs = {layout: (folder / f"{layout.replace(' ', '-')}.log").open("wb") for layout in environments}
    processes = {
        layout: subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=REPO,
            env=environment,
            stdout=logs[layout],
            stderr=subprocess.STDOUT,
        )
        for layout, environment in environments.items()
    }
    # In the cluster the numbers read from Redis (dead letters among them) arrive with the first poll.
    ready = {"one box": "animebot_workers_alive 1.0", "cluster": "animebot_dead_letters_total"}
    try:
        yield Services(
            ports,
            {
                layout: exported_series(scrape_when(ports[layout], process, ready[layout]))
                for layout, process in processes.items()
            },
        )
    finally:
        for process in processes.values():
            stop(process)
        for log in logs.values():
            log.close()
        redis.kill()


@pytest.fixture(scope="module")
def exported_by_layout(services: Services) -> dict[str, set[str]]:
    """Series names on /metrics of each layout."""
    return services.exported


@pytest.fixture(scope="module")
def exported(exported_by_layout: dict[str, set[str]]) -> set[str]:
    """Every series name either layout exports."""
    return set().union(*exported_by_layout.values())


# --- the tests --------------------------------------------------------------------------------------------------


def test_every_dashboard_query_names_only_exported_metrics(exported: set[str]) -> None:
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) > 20
    assert unexported(queries, exported) == {}


def test_every_alert_rule_names_only_exported_metrics(exported: set[str]) -> None:
    assert unexported(rule_queries(yaml.safe_load(RULES.read_text())), exported) == {}


def test_a_rule_naming_a_metric_that_does_not_exist_is_caught(exported: set[str]) -> None:
    rules = yaml.safe_load(RULES.read_text().replace("animebot_worker_hosts", "animebot_worker_host"))
    assert unexported(rule_queries(rules), exported) == {
        "AnimebotNoWorkerHost": {"animebot_worker_host"},
        "AnimebotNoWorkerAlive": {"animebot_worker_host"},
    }


def test_each_layout_exports_its_own_numbers(exported_by_layout: dict[str, set[str]]) -> None:
    one_box, cluster = exported_by_layout["one box"], exported_by_layout["cluster"]
    shared = {
        "animebot_queue_depth",
        "animebot_queue_oldest_wait_seconds",
        "animebot_workers_alive",
        "animebot_task_up",
    }
    assert shared <= one_box and shared <= cluster
    assert {"animebot_worker_restarts_total", "animebot_source_photos"} <= one_box
    cluster_only = {
        "animebot_worker_hosts",
        "animebot_redis_connected",
        "animebot_redis_refusals_total",
        "animebot_dead_letters_total",
    }
    assert cluster_only <= cluster
    assert not cluster_only & one_box


def test_the_parser_finds_every_metric_of_a_query() -> None:
    query = (
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval])))'
        ' / on (instance) group_left max({__name__="b_total"}) unless c offset 5m'
        " + max_over_time(d[10m:1m]) and -e"
    )
    assert metric_names(query) == {"a_bucket", "b_total", "c", "d", "e"}


def test_the_dashboard_is_grafana_json_with_a_prometheus_data_source_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = list(all_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    selected = set().union(*(metric_names(query) for _, query in dashboard_queries(dashboard)))
    assert selected >= DASHBOARD_TOPICS


def test_no_two_panels_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(json.loads(DASHBOARD.read_text())["panels"]):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def prometheus_config(ports: Iterable[int]) -> str:
    """A Prometheus scraping ``ports`` every second as job "animebot", with the alert rules evaluated each second."""
    targets = ", ".join(f'"127.0.0.1:{port}"' for port in ports)
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{RULES}]\n"
        f"scrape_configs: [{{job_name: animebot, static_configs: [{{targets: [{targets}]}}]}}]\n"
    )


def prometheus_api(port: int, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus HTTP API answer (which must be a success)."""
    answer = requests.get(f"http://127.0.0.1:{port}/api/v1/{path}", params=params, timeout=10).json()
    assert answer["status"] == "success", (path, params, answer)
    return answer["data"]


def grafana_filled(query: str) -> str:
    """``query`` with the dashboard's variables filled in as Grafana would."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    return query


def test_every_query_runs_on_a_real_prometheus_scraping_both_layouts(services: Services, tmp_path: Path) -> None:
    """The real Prometheus (Debian's, beside promtool) scrapes both services and evaluates the alert rules: every
    rule evaluates without error, and every dashboard query is accepted and the main ones find data."""
    binary = shutil.which("prometheus")
    if binary is None:
        skip_or_fail("prometheus is not installed (apt-get install -y prometheus)")
    assert binary is not None
    (tmp_path / "prometheus.yml").write_text(prometheus_config(services.ports.values()))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + PROMETHEUS_TIMEOUT
        while True:
            assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not scrape both services"
            try:
                # Three scrapes of each service at least (a rate needs two), and every rule evaluated.
                scraped = prometheus_api(port, "query", query="count_over_time(animebot_workers_alive[1m]) >= 3")
                rules = [rule for group in prometheus_api(port, "rules")["groups"] for rule in group["rules"]]
                if len(scraped["result"]) == len(services.ports) and all(rule["health"] != "unknown" for rule in rules):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert {rule["name"]: rule["health"] for rule in rules} == {
            name: "ok" for name, _ in rule_queries(yaml.safe_load(RULES.read_text()))
        }
        found: dict[str, int] = {}
        for where, query in dashboard_queries(json.loads(DASHBOARD.read_text())):
            found[where] = found.get(where, 0) + len(
                prometheus_api(port, "query", query=grafana_filled(query))["result"]
            )
        assert all(
            found[title] for title in ("Queue depth", "Worker hosts", "Tasks up", "Redis refusals", "Throughput")
        )
    finally:
        server.terminate()
        server.wait(30)
