"""Static checks of deploy/: no Docker engine or Kubernetes cluster runs in CI, so these
files are validated here as data (YAML parses, the fields that matter are there, every
OUTAGE_* variable exists) rather than by running them."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from store.config import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KNOWN = {name for name, _, _ in VARIABLES}
VAR = re.compile(r"\bOUTAGE_[A-Z0-9_]+\b")


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str, name: str) -> dict:
    found = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}"
    return found[0]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


# --- configuration names ----------------------------------------------------------------


@pytest.mark.parametrize("path", deploy_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_outage_variable_in_deploy_exists(path: Path) -> None:
    unknown = set(VAR.findall(path.read_text())) - KNOWN
    assert not unknown, f"{path.name} uses variables store/config.py does not read: {unknown}"


def test_docs_name_only_real_variables() -> None:
    for doc in ("operations.md", "scaling.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert not set(VAR.findall(text)) - KNOWN, doc


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all("slim" in f for f in froms)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*\n(?:.*\\\n)*.*", text, re.M)
    assert health and "/healthz" in health.group(0)
    assert re.search(r'^ENTRYPOINT \["outage"\]', text, re.M)
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / copied).exists(), copied
    probe = re.search(r"probes/(\w+\.py)", health.group(0)).group(1)
    assert (DEPLOY / "probes" / probe).exists()


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for needed in (
        "pyproject.toml",
        "cli/",
        "detector/",
        "store/",
        "web/",
        "workers/",
        "deploy/probes/",
        "deploy/gunicorn.conf.py",
    ):
        assert f"!{needed}" in ignore


# --- compose ----------------------------------------------------------------------------


def test_compose_has_every_role_and_redis_with_aof_on_a_volume() -> None:
    services = compose()["services"]
    assert {"redis", "web", "worker", "scheduler", "proxy"} <= services.keys()
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    mounts = {v.split(":")[1] for v in redis["volumes"]}
    assert "/data" in mounts
    assert any(v.split(":")[0] in compose()["volumes"] for v in redis["volumes"])


def test_compose_runs_web_twice_behind_the_proxy_and_one_scheduler() -> None:
    services = compose()["services"]
    web = services["web"]
    assert web["deploy"]["replicas"] >= 2
    assert web["command"][0] == "web" and "0.0.0.0" in web["command"]
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    assert services["scheduler"]["deploy"]["replicas"] == 1
    assert services["scheduler"]["command"] == ["scheduler"]
    assert "outage worker" in " ".join(services["worker"]["entrypoint"])
    assert services["worker"]["deploy"]["replicas"] >= 2
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server web:8000" in nginx
    assert services["proxy"]["ports"]


def test_compose_roles_share_one_configuration() -> None:
    services = compose()["services"]
    envs = [services[r]["environment"] for r in ("web", "worker", "scheduler")]
    assert envs[0] is envs[1] is envs[2] or envs[0] == envs[1] == envs[2]
    env = envs[0]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert "OUTAGE_SECRET_KEY" in env and set(env) - {"REDIS_URL"} <= KNOWN
    for role in ("web", "worker", "scheduler"):
        assert services[role]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[role].get("read_only") is True


# --- Kubernetes -------------------------------------------------------------------------


def test_k8s_documents_are_well_formed_and_all_listed() -> None:
    docs = k8s_docs()
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("name", ["outage-web", "outage-worker", "outage-scheduler"])
def test_deployments_are_consistent_and_sized(name: str) -> None:
    dep = find("Deployment", name)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in containers(dep):
        res = container["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"]
        assert res["limits"]["memory"]
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"outage-config", "outage-secrets"}
        assert container["image"] == "outage-detector"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/var/lib/outage" in mounts


def test_web_has_probes_on_readyz_and_healthz_and_a_service() -> None:
    web = find("Deployment", "outage-web")
    assert web["spec"]["replicas"] >= 2
    (container,) = containers(web)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names
    assert str(port_names["http"]) in container["args"]
    service = find("Service", "outage-web")
    assert (
        service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    )
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_web_has_a_disruption_budget_and_an_autoscaler() -> None:
    web = find("Deployment", "outage-web")
    pdb = find("PodDisruptionBudget", "outage-web")
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= web["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pdb["spec"]["minAvailable"] >= 1
    hpa = find("HorizontalPodAutoscaler", "outage-web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "outage-web",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_workers_have_a_liveness_probe_and_a_budget() -> None:
    worker = find("Deployment", "outage-worker")
    (container,) = containers(worker)
    command = container["livenessProbe"]["exec"]["command"]
    assert (DEPLOY / "probes" / Path(command[-1]).name).exists()
    assert "$(POD_NAME)" in container["args"]
    assert find("PodDisruptionBudget", "outage-worker")["spec"]["maxUnavailable"] == 1


def test_exactly_one_scheduler() -> None:
    scheduler = find("Deployment", "outage-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert containers(scheduler)[0]["args"] == ["scheduler"]
    assert not [
        d
        for d in k8s_docs()
        if d["kind"] == "HorizontalPodAutoscaler"
        and d["spec"]["scaleTargetRef"]["name"] == "outage-scheduler"
    ]


def test_config_map_and_secret_hold_only_known_variables() -> None:
    config = find("ConfigMap", "outage-config")["data"]
    secret = find("Secret", "outage-secrets")["stringData"]
    assert set(config) | set(secret) <= KNOWN
    assert "REDIS_URL" in config and "OUTAGE_SECRET_KEY" in secret
    assert all(isinstance(v, str) for v in config.values())


def test_redis_statefulset_keeps_an_aof_on_a_volume() -> None:
    redis = find("StatefulSet", "redis")
    (container,) = containers(redis)
    args = " ".join(container["args"])
    assert "--appendonly yes" in args
    claims = {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]}
    assert {m["name"] for m in container["volumeMounts"]} <= claims


# --- systemd ----------------------------------------------------------------------------


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit (repeated keys allowed) into section -> key -> values."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: bad line {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize(
    "name", ["outage-web.service", "outage-worker@.service", "outage-scheduler.service"]
)
def test_systemd_services_run_a_role_as_an_unprivileged_user(name: str) -> None:
    sections = unit(DEPLOY / "systemd" / name)
    service = sections["Service"]
    assert service["User"] == ["outage"]
    assert service["EnvironmentFile"] == ["/etc/outage/outage.env"]
    assert service["Restart"] == ["always"]
    assert service["NoNewPrivileges"] == ["true"]
    (exec_start,) = service["ExecStart"]
    role = {
        "outage-web.service": "gunicorn -c /etc/outage/gunicorn.conf.py",
        "outage-worker@.service": "outage worker",
        "outage-scheduler.service": "outage scheduler",
    }[name]
    assert role in exec_start
    assert sections["Install"]["WantedBy"] == ["outage.target"]


def test_systemd_target_starts_one_scheduler() -> None:
    wants = " ".join(unit(DEPLOY / "systemd" / "outage.target")["Unit"]["Wants"]).split()
    assert wants.count("outage-scheduler.service") == 1
    assert len([w for w in wants if w.startswith("outage-worker@")]) >= 2
    assert not list((DEPLOY / "systemd").glob("outage-scheduler@*"))


# --- gunicorn ---------------------------------------------------------------------------


def test_deploy_gunicorn_conf_is_the_packaged_one() -> None:
    from cli import gunicorn_conf

    ns = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    for name in (
        "wsgi_app",
        "workers",
        "worker_class",
        "worker_connections",
        "timeout",
        "graceful_timeout",
        "preload_app",
        "logconfig_dict",
        "on_starting",
        "child_exit",
        "control_socket_disable",
    ):
        assert ns[name] == getattr(gunicorn_conf, name), name
    assert ns["wsgi_app"] == "web:create_app()"
    assert ns["preload_app"] is False and ns["max_requests"] == 0


# --- offline tools, when this machine has them -----------------------------------------


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kustomize_renders_every_resource_into_the_namespace() -> None:
    res = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    rendered = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert len(rendered) == len(k8s_docs())
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "outage", doc["metadata"]["name"]
        if doc["kind"] == "Deployment":
            assert all(c["image"] == "outage-detector:0.1.0" for c in containers(doc))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is missing")
def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gunicorn", "outage"):  # the venv of a real install, stubbed
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    for path in (DEPLOY / "systemd").iterdir():
        text = path.read_text().replace("/opt/outage/venv/bin/", f"{bin_dir}/")
        (tmp_path / path.name).write_text(text)
    names = [
        "outage-web.service",
        "outage-worker@1.service",
        "outage-scheduler.service",
        "outage.target",
    ]
    res = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in (res.stdout + res.stderr).splitlines() if "outage" in line]
    assert not complaints, complaints
