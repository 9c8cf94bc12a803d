"""Prometheus and Grafana of the production stack: they point at what the stack serves.

Compose cannot run here (no Docker engine), so the wiring is checked statically;
that the dashboard's metrics are really exported is checked against the running
embedded stack in tests/integration/test_metrics.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit import test_compose as compose_file
from tests.unit.test_compose import bind_mounts, command_words, environment, option

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "ops" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "momentum.json"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"
METRIC = re.compile(r"\bmomentum_[a-z0-9_]+")


def dashboard_metrics(path: Path = DASHBOARD) -> set[str]:
    """Every metric name the dashboard's queries use."""
    document = json.loads(path.read_text())
    return {
        name
        for panel in document["panels"]
        for target in panel.get("targets", [])
        for name in METRIC.findall(target["expr"])
    }


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    """The compose file's services as `docker compose` sees them (as in test_compose)."""
    raw = yaml.safe_load(compose_file.COMPOSE_FILE.read_text())
    env = {**compose_file.read_env_file(compose_file.ENV_EXAMPLE), **compose_file.FILLED_IN}
    return dict(compose_file.resolve(raw, env)["services"])


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    document = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert isinstance(document, dict)
    return {job["job_name"]: job for job in document["scrape_configs"]}


def targets(job: dict[str, Any]) -> set[tuple[str, int]]:
    found = set()
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, port = target.partition(":")
            found.add((host, int(port)))
    for dns in job.get("dns_sd_configs", []):
        found |= {(name, int(dns["port"])) for name in dns["names"]}
    return found


def test_prometheus_scrapes_each_momentum_process_where_it_serves_metrics(
    prometheus: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    gateway = int(option(command_words(services["gateway"]), "--port"))
    worker = int(option(command_words(services["worker"]), "--web-port"))
    provider = int(option(command_words(services["payment-provider"]), "--port"))
    assert targets(prometheus["gateway"]) == {("gateway", gateway)}
    assert targets(prometheus["worker"]) == {("worker", worker)}
    assert targets(prometheus["payment-provider"]) == {("payment-provider", provider)}
    # Faust's pages end in a slash; the FastAPI apps' do not.
    paths = {name: job["metrics_path"] for name, job in prometheus.items()}
    assert paths == {"gateway": "/metrics", "worker": "/metrics/", "payment-provider": "/metrics"}
    # Replicas are found by DNS, so scaling the workers needs no edit here.
    assert "dns_sd_configs" in prometheus["worker"]


def test_prometheus_and_grafana_mount_the_files_in_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = bind_mounts(services["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    grafana = bind_mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == PROVISIONING
    assert grafana["/var/lib/grafana/dashboards"] == DASHBOARD.parent
    home = environment(services["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"/var/lib/grafana/dashboards/{DASHBOARD.name}"


def test_grafana_loads_the_dashboard_from_the_prometheus_it_provisions() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "momentum.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    document = json.loads(DASHBOARD.read_text())
    uids = {
        target["datasource"]["uid"]
        for panel in document["panels"]
        for target in panel.get("targets", [])
    }
    assert uids == {source["uid"]}


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    document = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in document["panels"] if p["type"] == "row"]
    assert rows == ["Saga throughput", "Latency", "Lag", "Failures and dead letters", "State"]
    ids = [p["id"] for p in document["panels"]]
    assert len(ids) == len(set(ids))
    assert {
        "momentum_orders_settled_total",
        "momentum_processing_seconds_bucket",
        "momentum_consumer_lag_records",
        "momentum_dead_letters_total",
    } <= dashboard_metrics()


def test_tracing_is_off_by_default_and_jaeger_is_there_to_receive_it(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("gateway", "worker"):
        assert environment(services[name])["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", name
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert environment(jaeger)["COLLECTOR_OTLP_ENABLED"] == "true"
    # .env.example says how to turn it on: the OTLP/HTTP port of the jaeger service.
    assert "http://jaeger:4318" in compose_file.ENV_EXAMPLE.read_text()
