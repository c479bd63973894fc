"""The Kubernetes example of docs/scaling.md: the Deployment passes kubernetes-validate's strict schema check (what
`kubectl apply --dry-run=client` checks), and the KEDA ScaledObject (a CRD it has no schema for) is checked for
what matters: it scales that Deployment on the queue, and a pod stops only after its last photo could finish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from bot.config import Settings

MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "k8s" / "worker.yaml"


def resources() -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in yaml.safe_load_all(MANIFEST.read_text())}


def test_the_deployment_passes_the_strict_kubernetes_schema() -> None:
    deployment = resources()["Deployment"]
    kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_the_scaled_object_scales_the_workers_on_the_queue_with_a_long_enough_grace_period() -> None:
    deployment, scaled = resources()["Deployment"], resources()["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] != "cpu" and "animebot_queue_depth" in trigger["metadata"]["query"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > Settings.model_fields["job_timeout"].default
    assert pod["containers"][0]["command"] == ["animebot", "worker"]
