"""deploy/kubernetes: the overlays render with kustomize, validate against the Kubernetes
schemas (kubernetes-validate) and have the shape docs/deployment.md promises."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from atrium.config import Settings
from tests.deploy.conftest import DEPLOY, need
from tests.test_docs import _env_names

KUBE = DEPLOY / "kubernetes"
OVERLAYS = ["staging", "production"]
SETTINGS = set(_env_names(Settings, "ATRIUM_"))


def render(overlay: str) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kustomize built into kubectl) of an overlay, as documents."""
    kubectl = need("kubectl", "kubectl (>= 1.27, for its built-in kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    tool = need("kubernetes-validate", "pip/uv tool: kubernetes-validate")
    return subprocess.run(
        [tool, "--strict", str(path)], capture_output=True, text=True, check=False
    )


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def docs(overlay: str) -> list[dict[str, Any]]:
    return render(overlay)


def test_overlay_validates_against_the_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(render(overlay)))

    result = validate(rendered)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 12


def test_secret_example_validates() -> None:
    result = validate(KUBE / "base" / "secret.example.yaml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_misspelt_field(tmp_path: Path) -> None:
    docs = render("staging")
    deployment = find(docs, "Deployment", "atrium-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(deployment))

    assert validate(broken).returncode != 0


def test_every_resource_of_the_overlay_is_in_its_namespace(overlay: str, docs: Any) -> None:
    namespaces = {d["metadata"].get("namespace") for d in docs}

    assert namespaces == {"atrium" if overlay == "production" else "atrium-staging"}


def test_api_deployment_has_replicas_probes_and_resources(docs: list[dict[str, Any]]) -> None:
    api = find(docs, "Deployment", "atrium-api")
    container = api["spec"]["template"]["spec"]["containers"][0]

    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["args"][0] == "serve"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def test_autoscaler_and_disruption_budget_cover_the_api(docs: list[dict[str, Any]]) -> None:
    api = find(docs, "Deployment", "atrium-api")
    pods = api["spec"]["template"]["metadata"]["labels"]
    hpa = find(docs, "HorizontalPodAutoscaler", "atrium-api")
    pdb = find(docs, "PodDisruptionBudget", "atrium-api")
    service = find(docs, "Service", "atrium-api")

    assert hpa["spec"]["scaleTargetRef"]["name"] == "atrium-api"
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pods.items()
    assert service["spec"]["selector"].items() <= pods.items()


def test_worker_and_migration_job_run_the_other_commands(docs: list[dict[str, Any]]) -> None:
    worker = find(docs, "Deployment", "atrium-worker")["spec"]["template"]["spec"]
    job = find(docs, "Job", "atrium-migrate")["spec"]["template"]["spec"]

    assert worker["containers"][0]["args"] == ["worker"]
    assert job["containers"][0]["args"] == ["migrate"]
    assert job["restartPolicy"] == "Never"


def test_every_pod_runs_as_non_root_on_a_read_only_root(docs: list[dict[str, Any]]) -> None:
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in {"Deployment", "Job"}]

    assert len(pods) == 3
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_all_pods_run_the_same_image(overlay: str, docs: list[dict[str, Any]]) -> None:
    images = {
        c["image"]
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
        for c in d["spec"]["template"]["spec"]["containers"]
    }

    assert len(images) == 1
    assert images.pop().startswith("registry.example.com/atrium:")


def test_network_policies_select_atrium_pods(docs: list[dict[str, Any]]) -> None:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]

    assert {p["metadata"]["name"] for p in policies} == {
        "atrium-api-ingress",
        "atrium-deny-ingress",
        "atrium-egress",
    }


def test_config_and_secret_example_name_only_real_settings(docs: list[dict[str, Any]]) -> None:
    config = find(docs, "ConfigMap", "atrium-config")["data"]
    secret = yaml.safe_load((KUBE / "base" / "secret.example.yaml").read_text())["stringData"]
    names = {k for k in [*config, *secret] if k.startswith("ATRIUM_")}

    assert names
    assert names - SETTINGS == set()
    assert config["ATRIUM_DATABASE__AUTO_MIGRATE"] == "false"
    assert config["ATRIUM_AUTH__SIGNING_KEY_FILE"].endswith("/signing_key")
