"""The one place that reads configuration: environment variables prefixed DEVICELAB_."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    pass


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _claim_lease_s(env: Mapping[str, str]) -> float:
    return _number(env, "DEVICELAB_CLAIM_LEASE_S", 20, 1)


def _reoffer_after_s(env: Mapping[str, str], claim_lease_s: float) -> float:
    name = "DEVICELAB_REOFFER_AFTER_S"
    value = _number(env, name, 2 * claim_lease_s)
    if value <= claim_lease_s:
        raise SettingsError(
            f"{name} ({value:g}) must be longer than DEVICELAB_CLAIM_LEASE_S "
            f"({claim_lease_s:g}): a job offered again before its claim lapsed would only be "
            "deferred by the runner that gets it"
        )
    return value


def _auth_settings(env: Mapping[str, str], database_url: str) -> dict:
    """The auth service's settings and how the API verifies tokens."""
    from limits import parse_many

    mode = (env.get("DEVICELAB_AUTH_MODE") or "local").strip().lower()
    if mode not in ("local", "remote"):
        raise SettingsError(f"DEVICELAB_AUTH_MODE must be local or remote, got {mode!r}")
    auth_url = (env.get("DEVICELAB_AUTH_URL") or "").strip().rstrip("/")
    if mode == "remote" and not auth_url.startswith(("http://", "https://")):
        raise SettingsError(
            "DEVICELAB_AUTH_MODE=remote needs DEVICELAB_AUTH_URL, the base URL of the auth "
            f"service (e.g. http://auth.lab:8001), got {auth_url!r}"
        )
    rate_limit = (env.get("DEVICELAB_LOGIN_RATE_LIMIT") or "10/minute").strip()
    try:
        parse_many(rate_limit)
    except ValueError:
        raise SettingsError(
            f"DEVICELAB_LOGIN_RATE_LIMIT must look like 10/minute or 5 per 30 seconds, "
            f"got {rate_limit!r}"
        ) from None
    redis_url = (env.get("DEVICELAB_REDIS_URL") or "").strip()
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "redis+unix://")):
        raise SettingsError(f"DEVICELAB_REDIS_URL must be a redis:// URL, got {redis_url!r}")
    return {
        "auth_database_url": env.get("DEVICELAB_AUTH_DATABASE_URL") or database_url,
        "session_idle_s": _number(env, "DEVICELAB_SESSION_IDLE_S", 12 * 3600, 60),
        "session_lifetime_s": _number(env, "DEVICELAB_SESSION_LIFETIME_S", 7 * 24 * 3600, 60),
        "login_rate_limit": rate_limit,
        "redis_url": redis_url,
        "auth_mode": mode,
        "auth_url": auth_url,
        "auth_cache_s": _number(env, "DEVICELAB_AUTH_CACHE_S", 30),
        "trusted_proxies": int(_number(env, "DEVICELAB_TRUSTED_PROXIES", 0)),
        "token_max_days": int(_number(env, "DEVICELAB_TOKEN_MAX_DAYS", 90, 1)),
        "token_allow_no_expiry": _flag(env, "DEVICELAB_TOKEN_ALLOW_NO_EXPIRY"),
    }


def _stream_batch_s(env: Mapping[str, str]) -> float:
    name = "DEVICELAB_STREAM_BATCH_S"
    value = _number(env, name, 0.25)
    if value > 1:
        raise SettingsError(f"{name} must be at most 1 (changes must reach streams within 1 s)")
    return value


def _stream_recheck_s(env: Mapping[str, str]) -> float:
    name = "DEVICELAB_STREAM_RECHECK_S"
    value = _number(env, name, 5, 0.05)
    if value > 60:  # a stream must notice a logout within seconds, not minutes
        raise SettingsError(f"{name} must be at most 60, got {env.get(name)!r}")
    return value


def _artifact_settings(env: Mapping[str, str], data_dir: str, database_url: str) -> dict:
    """Log and artifact limits, and the artifact store: the database by default on
    PostgreSQL (every API replica sees it), files under the data directory otherwise."""
    store = (env.get("DEVICELAB_ARTIFACT_STORE") or "").strip().lower()
    if not store:
        store = "database" if database_url.startswith("postgresql") else "filesystem"
    if store not in ("filesystem", "database"):
        raise SettingsError("DEVICELAB_ARTIFACT_STORE must be filesystem or database")
    return {
        "max_log_lines_per_run": int(_number(env, "DEVICELAB_MAX_LOG_LINES_PER_RUN", 100_000, 1)),
        "max_log_bytes_per_run": int(
            _number(env, "DEVICELAB_MAX_LOG_BYTES_PER_RUN", 20 * 1024 * 1024, 1)
        ),
        "max_artifact_bytes": int(
            _number(env, "DEVICELAB_MAX_ARTIFACT_BYTES", 100 * 1024 * 1024, 1)
        ),
        "max_artifact_bytes_per_run": int(
            _number(env, "DEVICELAB_MAX_ARTIFACT_BYTES_PER_RUN", 500 * 1024 * 1024, 1)
        ),
        "artifact_store": store,
        "artifact_dir": env.get("DEVICELAB_ARTIFACT_DIR")
        or str(Path(data_dir).resolve() / "artifacts"),
    }


def _worker_class(env: Mapping[str, str]) -> str:
    worker_class = env.get("DEVICELAB_WORKER_CLASS") or "gevent"
    if worker_class not in ("split", "gevent", "gthread"):
        raise SettingsError(
            f"DEVICELAB_WORKER_CLASS must be split, gevent or gthread, got {worker_class!r}"
        )
    return worker_class


@dataclass(frozen=True)
class Settings:
    data_dir: str = "var"
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 16
    # gevent: each request (and each open live stream) a greenlet; gthread: an OS thread each;
    # split (being measured): REST on threaded workers, streams on gevent ones (split_workers)
    worker_class: str = "gevent"
    # split: the gevent workers that hold the live streams (besides `workers` threaded ones)
    stream_workers: int = 1
    worker_connections: int = 1000
    # gevent: REST requests a worker runs at once (streams not counted); more wait in line
    active_requests: int = 4
    max_body_bytes: int = 1024 * 1024
    # the longest measured series a runner may report per metric (more is a 422)
    max_samples_per_metric: int = 1000
    # encoded device list answers a worker keeps, keyed by the change log's position (0: off)
    list_cache_entries: int = 64
    queue_allowance_s: float = 600
    # how long a run may wait for its devices in the queue (a start may ask for less or more)
    queue_timeout_s: float = 24 * 3600
    # the longest a hold may keep devices, counted from now (at placement and at each extension)
    max_hold_s: float = 8 * 3600
    progress_lease_s: float = 300
    # a runner's claim on its run lapses when it has not reported for this long (its heartbeat
    # renews it); then another runner may take the run over
    claim_lease_s: float = 20
    # the worker offers a claimed run's job again once its runner has been silent this long
    # (default: two claim leases), at most reoffer_limit times per run (0: never); for
    # transports that do not redeliver a killed consumer's message (the embedded one)
    reoffer_after_s: float = 40
    reoffer_limit: int = 3
    device_silence_s: float = 300
    log_level: str = "INFO"
    # Signs session tokens and runner callback credentials. Required outside demo mode.
    secret_key: str = ""
    # messaging
    broker_url: str = ""
    exchange: str = "devicelab"
    job_queue: str = "devicelab.jobs"
    dead_letter_queue: str = "devicelab.jobs.dead"
    control_exchange: str = "devicelab.control"
    callback_base_url: str = ""
    credential_grace_s: float = 86400
    relay_interval_s: float = 0.05  # a job waits half of this on average before it is sent
    reaper_interval_s: float = 5
    # the worker's scheduling pass: the safety net for freed devices, and queue timeouts
    scheduler_interval_s: float = 5
    # how often the worker looks for devices whose health check is due (docs/health-checks.md)
    health_check_interval_s: float = 60
    # after each of its passes the worker estimates the starts of this many items at the head
    # of the queue (the rest have none): the cost grows with the lab (docs/scheduling.md)
    estimate_limit: int = 100
    grafana_url_template: str = ""
    # auth: the users and sessions store, session timeouts, login rate limit, verification
    auth_database_url: str = ""
    session_idle_s: float = 12 * 3600
    session_lifetime_s: float = 7 * 24 * 3600
    login_rate_limit: str = "10/minute"
    redis_url: str = ""
    auth_mode: str = "local"  # local: verify tokens in-process; remote: ask auth_url
    auth_url: str = ""
    auth_cache_s: float = 30
    # reverse proxies in front whose X-Forwarded-For/-Proto are believed (the client IP the
    # login rate limit counts by); 0 believes none, so a client cannot pick its own IP
    trusted_proxies: int = 0
    # API tokens: the longest expiry one may choose, and whether tokens without one are allowed
    token_max_days: int = 90
    token_allow_no_expiry: bool = False
    # live streams (/api/events): how often an open stream re-checks its session and renews
    # its lease, and how many one user may hold open at once (across all API processes)
    stream_recheck_s: float = 5
    # the process's change reader reads the feed at most once per this many seconds: changes
    # close behind each other reach the streams in one write each
    stream_batch_s: float = 0.25
    max_streams_per_user: int = 8
    # webhooks: the hosts deliveries may go to (names, *.domain patterns, addresses, networks;
    # none by default), how long a delivery is retried, its first retry delay (doubling up to
    # an hour), the time one attempt may take, and how often the worker looks for work
    webhook_allowed_hosts: tuple[str, ...] = ()
    webhook_retry_for_s: float = 24 * 3600
    webhook_first_retry_s: float = 10
    webhook_timeout_s: float = 10
    webhook_interval_s: float = 1
    webhook_hold_warning_s: float = 900  # hold.expiring: this long before the expiry
    plan_interval_s: float = 10  # how often the worker looks at plan triggers and plan runs
    # a runner not heard from for this long shows `silent` (application/use_cases/runners.py
    # says why 60 s: three claim leases)
    runner_silent_after_s: float = 60
    # run logs and artifacts: per-run log limits (beyond them one marker line, the rest
    # dropped), artifact limits per file and per run, and where artifacts' bytes are kept
    # ("filesystem" in artifact_dir, or "database": the lab's database, for several replicas)
    max_log_lines_per_run: int = 100_000
    max_log_bytes_per_run: int = 20 * 1024 * 1024
    max_artifact_bytes: int = 100 * 1024 * 1024
    max_artifact_bytes_per_run: int = 500 * 1024 * 1024
    artifact_store: str = "filesystem"
    artifact_dir: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = env.get("DEVICELAB_DATA_DIR") or "var"
        database_url = env.get("DEVICELAB_DATABASE_URL") or (
            f"sqlite:///{Path(data_dir).resolve() / 'devicelab.db'}"
        )
        return cls(
            **_auth_settings(env, database_url),
            data_dir=data_dir,
            database_url=database_url,
            host=env.get("DEVICELAB_HOST") or "127.0.0.1",
            port=int(_number(env, "DEVICELAB_PORT", 8000, 1)),
            workers=int(_number(env, "DEVICELAB_WORKERS", 2, 1)),
            threads=int(_number(env, "DEVICELAB_THREADS", 16, 1)),
            worker_class=_worker_class(env),
            stream_workers=int(_number(env, "DEVICELAB_STREAM_WORKERS", 1, 1)),
            worker_connections=int(_number(env, "DEVICELAB_WORKER_CONNECTIONS", 1000, 1)),
            active_requests=int(_number(env, "DEVICELAB_ACTIVE_REQUESTS", 4, 1)),
            max_body_bytes=int(_number(env, "DEVICELAB_MAX_BODY_BYTES", 1024 * 1024, 1024)),
            max_samples_per_metric=int(_number(env, "DEVICELAB_MAX_SAMPLES_PER_METRIC", 1000, 1)),
            list_cache_entries=int(_number(env, "DEVICELAB_LIST_CACHE_ENTRIES", 64, 0)),
            queue_allowance_s=_number(env, "DEVICELAB_QUEUE_ALLOWANCE_S", 600),
            queue_timeout_s=_number(env, "DEVICELAB_QUEUE_TIMEOUT_S", 24 * 3600, 1),
            max_hold_s=_number(env, "DEVICELAB_MAX_HOLD_S", 8 * 3600, 60),
            progress_lease_s=_number(env, "DEVICELAB_PROGRESS_LEASE_S", 300),
            claim_lease_s=_claim_lease_s(env),
            reoffer_after_s=_reoffer_after_s(env, _claim_lease_s(env)),
            reoffer_limit=int(_number(env, "DEVICELAB_REOFFER_LIMIT", 3)),
            device_silence_s=_number(env, "DEVICELAB_DEVICE_SILENCE_S", 300, 1),
            log_level=(env.get("DEVICELAB_LOG_LEVEL") or "INFO").upper(),
            secret_key=env.get("DEVICELAB_SECRET_KEY") or "",
            broker_url=env.get("DEVICELAB_BROKER_URL")
            or f"sqla+sqlite:///{Path(data_dir).resolve() / 'broker.db'}",
            exchange=env.get("DEVICELAB_EXCHANGE") or "devicelab",
            job_queue=env.get("DEVICELAB_JOB_QUEUE") or "devicelab.jobs",
            dead_letter_queue=env.get("DEVICELAB_DEAD_LETTER_QUEUE") or "devicelab.jobs.dead",
            control_exchange=env.get("DEVICELAB_CONTROL_EXCHANGE") or "devicelab.control",
            callback_base_url=(
                env.get("DEVICELAB_CALLBACK_BASE_URL")
                or f"http://{env.get('DEVICELAB_HOST') or '127.0.0.1'}:"
                f"{int(_number(env, 'DEVICELAB_PORT', 8000, 1))}"
            ).rstrip("/"),
            credential_grace_s=_number(env, "DEVICELAB_CREDENTIAL_GRACE_S", 86400),
            relay_interval_s=_number(env, "DEVICELAB_RELAY_INTERVAL_S", 0.05, 0.01),
            reaper_interval_s=_number(env, "DEVICELAB_REAPER_INTERVAL_S", 5, 0.1),
            scheduler_interval_s=_number(env, "DEVICELAB_SCHEDULER_INTERVAL_S", 5, 0.1),
            health_check_interval_s=_number(env, "DEVICELAB_HEALTH_CHECK_INTERVAL_S", 60, 0.1),
            estimate_limit=int(_number(env, "DEVICELAB_ESTIMATE_LIMIT", 100, 0)),
            grafana_url_template=env.get("DEVICELAB_GRAFANA_URL_TEMPLATE") or "",
            stream_recheck_s=_stream_recheck_s(env),
            stream_batch_s=_stream_batch_s(env),
            max_streams_per_user=int(_number(env, "DEVICELAB_MAX_STREAMS_PER_USER", 8, 1)),
            webhook_allowed_hosts=tuple(
                h.strip()
                for h in (env.get("DEVICELAB_WEBHOOK_ALLOWED_HOSTS") or "").split(",")
                if h.strip()
            ),
            webhook_retry_for_s=_number(env, "DEVICELAB_WEBHOOK_RETRY_FOR_S", 24 * 3600, 1),
            webhook_first_retry_s=_number(env, "DEVICELAB_WEBHOOK_FIRST_RETRY_S", 10, 0.01),
            webhook_timeout_s=_number(env, "DEVICELAB_WEBHOOK_TIMEOUT_S", 10, 0.1),
            webhook_interval_s=_number(env, "DEVICELAB_WEBHOOK_INTERVAL_S", 1, 0.05),
            webhook_hold_warning_s=_number(env, "DEVICELAB_WEBHOOK_HOLD_WARNING_S", 900, 1),
            plan_interval_s=_number(env, "DEVICELAB_PLAN_INTERVAL_S", 10, 0.05),
            runner_silent_after_s=_number(env, "DEVICELAB_RUNNER_SILENT_AFTER_S", 60, 1),
            **_artifact_settings(env, data_dir, database_url),
        )

    def require_secret_key(self) -> str:
        if len(self.secret_key) < 32:
            raise SettingsError(
                "DEVICELAB_SECRET_KEY must be set to a random string of at least 32 characters "
                '(for example: python3 -c "import secrets; print(secrets.token_urlsafe(48))"); '
                "only `devicelab up` (demo mode) generates one by itself"
            )
        return self.secret_key

    def as_config(self) -> dict:
        return asdict(self)


def demo_secret_key(data_dir: str) -> tuple[str, Path]:
    """Demo mode only: a random secret kept in the data directory, made on first use."""
    path = Path(data_dir) / "demo-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip(), path


# What only the API, the auth service and the worker need. A runner holds none of it: with the
# secret key anyone could forge session tokens and run credentials, and the databases are the
# lab's whole state. `devicelab up` starts its runner without them, `devicelab runner` ignores them.
SERVER_ONLY_VARIABLES = (
    "DEVICELAB_SECRET_KEY",
    "DEVICELAB_DATABASE_URL",
    "DEVICELAB_AUTH_DATABASE_URL",
    "DEVICELAB_REDIS_URL",
)


def runner_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without what a runner must not hold (SERVER_ONLY_VARIABLES)."""
    return {k: v for k, v in env.items() if k not in SERVER_ONLY_VARIABLES}


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class RunnerSettings:
    """The reference Test Runner's own settings (the broker and queue names are in Settings)."""

    runner_id: str = ""
    executor: str = "simulate"
    seed: str | None = None
    pass_probability: float = 0.8
    time_factor: float = 1.0
    heartbeat_s: float = 2.0
    callback_patience_s: float = 60.0
    # the server's claim lease, as this runner assumes it: its heartbeat must renew the claim
    # several times within it
    claim_lease_s: float = 20.0
    # how long a job whose run another runner claims is held, asking again as the claim would
    # lapse, before it goes back to the queue (and waits as long again before the next try)
    claim_patience_s: float = 60.0
    influx_url: str = ""
    influx_db: str = "devicelab"
    influx_username: str = ""
    influx_password: str = field(default="", repr=False)
    write_metrics: bool = False
    # where the command executor makes each command's working directory ("": the system's
    # temporary directory)
    work_dir: str = ""
    # a drained runner takes the next job after this long to ask whether it still is (where
    # no control message tells it it is undrained)
    drain_probe_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunnerSettings:
        env = os.environ if env is None else env
        executor = (env.get("DEVICELAB_RUNNER_EXECUTOR") or "simulate").strip().lower()
        if executor not in ("simulate", "command", "influxdb"):
            raise SettingsError(
                f"DEVICELAB_RUNNER_EXECUTOR must be simulate, command or influxdb, got {executor!r}"
            )
        pass_probability = _number(env, "DEVICELAB_RUNNER_PASS_PROBABILITY", 0.8)
        if pass_probability > 1:
            raise SettingsError("DEVICELAB_RUNNER_PASS_PROBABILITY must be between 0 and 1")
        heartbeat_s = _number(env, "DEVICELAB_RUNNER_HEARTBEAT_S", 2.0, 0.01)
        claim_lease_s = _claim_lease_s(env)
        if heartbeat_s * 3 > claim_lease_s:
            raise SettingsError(
                f"DEVICELAB_RUNNER_HEARTBEAT_S ({heartbeat_s:g}) must be at most a third of "
                f"DEVICELAB_CLAIM_LEASE_S ({claim_lease_s:g}): a runner whose heartbeats "
                "cannot keep its claim alive loses its runs to other runners"
            )
        claim_patience_s = _number(env, "DEVICELAB_RUNNER_CLAIM_PATIENCE_S", 3 * claim_lease_s)
        if claim_patience_s < claim_lease_s:
            raise SettingsError(
                f"DEVICELAB_RUNNER_CLAIM_PATIENCE_S ({claim_patience_s:g}) must be at least "
                f"DEVICELAB_CLAIM_LEASE_S ({claim_lease_s:g}), or a crashed runner's job would "
                "go back to the queue before its claim lapses"
            )
        return cls(
            # empty: the runner takes a stable id of its own, "<hostname>-<slot>" (runner.py)
            runner_id=(env.get("DEVICELAB_RUNNER_ID") or "").strip(),
            executor=executor,
            seed=env.get("DEVICELAB_RUNNER_SEED") or None,
            pass_probability=pass_probability,
            time_factor=_number(env, "DEVICELAB_RUNNER_TIME_FACTOR", 1.0),
            heartbeat_s=heartbeat_s,
            callback_patience_s=_number(env, "DEVICELAB_RUNNER_CALLBACK_PATIENCE_S", 60.0),
            claim_lease_s=claim_lease_s,
            claim_patience_s=claim_patience_s,
            influx_url=(env.get("DEVICELAB_INFLUX_URL") or "").rstrip("/"),
            influx_db=env.get("DEVICELAB_INFLUX_DB") or "devicelab",
            influx_username=env.get("DEVICELAB_INFLUX_USERNAME") or "",
            influx_password=env.get("DEVICELAB_INFLUX_PASSWORD") or "",
            write_metrics=_flag(env, "DEVICELAB_RUNNER_WRITE_METRICS"),
            work_dir=(env.get("DEVICELAB_RUNNER_WORK_DIR") or "").strip(),
            drain_probe_s=_number(env, "DEVICELAB_RUNNER_DRAIN_PROBE_S", 30.0, 1),
        )


def _mqtt_topic_filter(raw: str) -> str:
    """An MQTT subscription filter: `+` stands for one whole level, `#` only at the end."""
    topic = raw.strip()
    levels = topic.split("/")
    if not topic or len(topic) > 200 or topic.startswith("$"):
        raise SettingsError(
            f"DEVICELAB_MQTT_TOPIC must be a topic filter like lab/+/telemetry, got {raw!r}"
        )
    for index, level in enumerate(levels):
        wildcard_misused = ("+" in level or "#" in level) and level not in ("+", "#")
        if wildcard_misused or (level == "#" and index != len(levels) - 1):
            raise SettingsError(
                f"DEVICELAB_MQTT_TOPIC: + must be a whole level and # the last one, got {raw!r}"
            )
    return topic


@dataclass(frozen=True)
class TelemetrySettings:
    """The telemetry listener's settings (`devicelab telemetry`): which MQTT broker and topics
    it listens to, and whether unknown devices register themselves."""

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    topic: str = "lab/+/telemetry"
    discovery: bool = False
    # several listeners with the same group share the messages (MQTT shared subscription)
    share_group: str = ""
    client_id: str = ""
    qos: int = 1
    # a device that reports more often is written at most once per interval (unless its
    # firmware changes or it was offline): keeps the database and the live events quiet
    heartbeat_interval_s: float = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TelemetrySettings:
        env = os.environ if env is None else env
        url = (env.get("DEVICELAB_MQTT_URL") or "mqtt://127.0.0.1:1883").strip()
        if not url.startswith(("mqtt://", "mqtts://")) or len(url) <= len("mqtts://"):
            raise SettingsError(
                f"DEVICELAB_MQTT_URL must look like mqtt://[user:password@]host[:1883] "
                f"(mqtts:// for TLS), got {url!r}"
            )
        share_group = (env.get("DEVICELAB_MQTT_SHARE_GROUP") or "").strip()
        if any(c in share_group for c in "/+#"):
            raise SettingsError(
                f"DEVICELAB_MQTT_SHARE_GROUP must not contain / + or #, got {share_group!r}"
            )
        qos = _number(env, "DEVICELAB_MQTT_QOS", 1)
        if qos not in (0, 1, 2):
            raise SettingsError(f"DEVICELAB_MQTT_QOS must be 0, 1 or 2, got {qos:g}")
        return cls(
            mqtt_url=url,
            topic=_mqtt_topic_filter(env.get("DEVICELAB_MQTT_TOPIC") or "lab/+/telemetry"),
            discovery=_flag(env, "DEVICELAB_MQTT_DISCOVERY"),
            share_group=share_group,
            client_id=(env.get("DEVICELAB_MQTT_CLIENT_ID") or "").strip()
            or f"devicelab-telemetry-{socket.gethostname()}-{os.getpid()}",
            qos=int(qos),
            heartbeat_interval_s=_number(env, "DEVICELAB_MQTT_HEARTBEAT_INTERVAL_S", 30),
        )


class _ReadRecorder(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def variable_names() -> frozenset[str]:
    """Every DEVICELAB_* variable the settings read: deployment files are checked against it."""
    recorder = _ReadRecorder()
    Settings.from_env(recorder)
    RunnerSettings.from_env(recorder)
    TelemetrySettings.from_env(recorder)
    return frozenset(recorder.names)
