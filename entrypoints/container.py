"""The dependency-injector container: the one place concrete objects are chosen and built."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.artifact_storage.filesystem import FilesystemArtifactStorage
from adapters.auth.passwords import Argon2PasswordHasher
from adapters.auth.remote import AuthServiceCheck, RemoteTokenVerifier
from adapters.auth.run_credentials import SignedRunCredentials
from adapters.auth.tokens import SessionTokenSigner
from adapters.clocks import SystemClock
from adapters.http.events import event_text
from adapters.http.security import BearerAuthenticator
from adapters.identifiers import UuidGenerator
from adapters.messaging.publisher import BrokerCheck, KombuPublisher
from adapters.messaging.topology import Topology
from adapters.persistence.artifact_chunks import DatabaseArtifactStorage
from adapters.persistence.auth_readiness import AuthDatabaseCheck
from adapters.persistence.auth_unit_of_work import SqlAuthUnitOfWork
from adapters.persistence.change_signal import change_signal_for
from adapters.persistence.engine import (
    engine_for,
    make_engine,
    make_read_engine,
    make_session_factory,
    read_engine_for,
)
from adapters.persistence.rate_limit_storage import URI as SQL_RATE_LIMIT_STORAGE
from adapters.persistence.readiness import DatabaseCheck
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from adapters.webhooks.http_sender import HttpWebhookSender, SystemResolver
from application.auth import api_tokens as auth_tokens
from application.auth import service_accounts as auth_service_accounts
from application.auth import sessions as auth_sessions
from application.auth import users as auth_users
from application.use_cases import (
    artifacts,
    catalog,
    comparison,
    devices,
    health_checks,
    holds,
    lab_version,
    live_streams,
    live_updates,
    plans,
    queue_estimates,
    relay,
    run_exports,
    run_logs,
    runners,
    scheduling,
    statistics,
    test_runs,
    trends,
    utilisation,
    webhooks,
)
from domain.api_tokens import TokenPolicy
from domain.run_logs import LogLimits
from domain.users import SessionPolicy
from domain.webhooks import RetryPolicy, TargetPolicy


def choose_login_limit_storage(redis_url: str, auth_engine) -> tuple[str, dict]:
    """Where the login rate limit counts (a `limits` storage URI and its options): Redis when
    configured, else the auth store's database, so every process of an instance shares one
    count."""
    if redis_url:
        return redis_url, {}
    return SQL_RATE_LIMIT_STORAGE, {"engine": auth_engine}


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(packages=["adapters.http"])

    config = providers.Configuration(strict=True)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidGenerator)

    # engines and their session factories are made at the first requests of a worker, by
    # threads that come together: thread-safe, or two threads could build two pools
    engine = providers.ThreadSafeSingleton(make_engine, config.database_url)
    read_engine = providers.ThreadSafeSingleton(make_read_engine, engine)
    session_factory = providers.ThreadSafeSingleton(make_session_factory, engine)
    read_session_factory = providers.ThreadSafeSingleton(make_session_factory, read_engine)
    uow = providers.Factory(
        SqlAlchemyUnitOfWork, session_factory, read_session_factory=read_session_factory
    )
    # the auth store: the lab's database (and its engines) unless DEVICELAB_AUTH_DATABASE_URL
    # names another
    auth_engine = providers.ThreadSafeSingleton(engine_for, config.auth_database_url, engine)
    auth_read_engine = providers.ThreadSafeSingleton(
        read_engine_for, auth_engine, engine, read_engine
    )
    auth_session_factory = providers.ThreadSafeSingleton(make_session_factory, auth_engine)
    auth_read_session_factory = providers.ThreadSafeSingleton(
        make_session_factory, auth_read_engine
    )
    auth_uow = providers.Factory(
        SqlAuthUnitOfWork, auth_session_factory, read_session_factory=auth_read_session_factory
    )
    readiness_checks = providers.List(
        providers.Singleton(DatabaseCheck, engine),
        providers.Singleton(BrokerCheck, config.broker_url),
        providers.Selector(
            config.auth_mode,
            local=providers.Singleton(AuthDatabaseCheck, auth_engine),
            remote=providers.Singleton(AuthServiceCheck, config.auth_url),
        ),
    )

    # messaging
    run_credentials = providers.Singleton(SignedRunCredentials, config.secret_key)
    topology = providers.Singleton(
        Topology,
        exchange=config.exchange,
        job_queue=config.job_queue,
        dead_letter_queue=config.dead_letter_queue,
        control_exchange=config.control_exchange,
    )
    publisher = providers.Singleton(KombuPublisher, config.broker_url, topology)
    relay_outbox = providers.Factory(
        relay.RelayOutbox,
        uow.provider,
        publisher,
        run_credentials,
        clock,
        config.callback_base_url,
        config.credential_grace_s,
    )
    purge_history = providers.Factory(relay.PurgeHistory, uow.provider, clock)
    read_changes = providers.Factory(live_updates.ReadChanges, uow.provider, clock)
    # one reader of the change log per process for all its live streams, woken by NOTIFY
    # on PostgreSQL, polling on SQLite; each update rendered once for every stream
    change_signal = providers.ThreadSafeSingleton(change_signal_for, config.database_url)
    change_fanout = providers.ThreadSafeSingleton(
        live_updates.ChangeFanout,
        read_changes,
        change_signal,
        event_text,
        batch_s=config.stream_batch_s,
    )
    # the lists' ETags (adapters/http/list_etags.py)
    read_lab_version = providers.Singleton(lab_version.ReadLabVersion, uow.provider)
    get_lab_statistics = providers.Factory(statistics.GetLabStatistics, uow.provider, clock)
    compare_results = providers.Factory(comparison.CompareResults, uow.provider)
    list_regressions = providers.Factory(comparison.ListRegressions, uow.provider)
    list_firmware_versions = providers.Factory(comparison.ListFirmwareVersions, uow.provider)
    show_trend = providers.Factory(trends.ShowTrend, uow.provider)
    show_utilisation = providers.Factory(utilisation.ShowUtilisation, uow.provider, clock)

    # auth: the auth service's use cases, and how /api requests are authenticated
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    token_signer = providers.Singleton(SessionTokenSigner, config.secret_key)
    session_policy = providers.Singleton(
        SessionPolicy.from_seconds, config.session_idle_s, config.session_lifetime_s
    )
    login = providers.Factory(
        auth_sessions.Login,
        auth_uow.provider,
        password_hasher,
        token_signer,
        clock,
        ids,
        session_policy,
    )
    authenticate = providers.Singleton(
        auth_sessions.Authenticate, auth_uow.provider, token_signer, clock, session_policy
    )
    logout = providers.Factory(auth_sessions.Logout, auth_uow.provider)
    get_session = providers.Factory(auth_sessions.GetSession, auth_uow.provider)
    list_sessions = providers.Factory(auth_sessions.ListSessions, auth_uow.provider, clock)
    revoke_session = providers.Factory(auth_sessions.RevokeSession, auth_uow.provider)
    end_other_sessions = providers.Factory(auth_sessions.EndOtherSessions, auth_uow.provider)
    purge_expired_sessions = providers.Factory(
        auth_sessions.PurgeExpiredSessions, auth_uow.provider, clock
    )
    create_user = providers.Factory(
        auth_users.CreateUser, auth_uow.provider, password_hasher, clock, ids
    )
    list_users = providers.Factory(auth_users.ListUsers, auth_uow.provider)
    get_user = providers.Factory(auth_users.GetUser, auth_uow.provider)
    update_user = providers.Factory(auth_users.UpdateUser, auth_uow.provider, clock)
    change_password = providers.Factory(
        auth_users.ChangePassword, auth_uow.provider, password_hasher, clock
    )
    reset_password = providers.Factory(
        auth_users.ResetPassword, auth_uow.provider, password_hasher, clock
    )
    find_user_by_email = providers.Factory(auth_users.FindUserByEmail, auth_uow.provider)
    create_service_account = providers.Factory(
        auth_service_accounts.CreateServiceAccount, auth_uow.provider, clock, ids
    )
    token_policy = providers.Singleton(
        TokenPolicy, config.token_max_days, config.token_allow_no_expiry
    )
    create_api_token = providers.Factory(
        auth_tokens.CreateApiToken, auth_uow.provider, clock, ids, token_policy
    )
    list_api_tokens = providers.Factory(auth_tokens.ListApiTokens, auth_uow.provider)
    revoke_api_token = providers.Factory(auth_tokens.RevokeApiToken, auth_uow.provider, clock)
    authenticate_api_token = providers.Singleton(
        auth_tokens.AuthenticateApiToken, auth_uow.provider, clock
    )
    # a bearer token of either kind (session or API token), checked in this process
    verify_bearer_token = providers.Singleton(
        auth_tokens.VerifyBearerToken, authenticate, authenticate_api_token
    )
    login_limit_storage = providers.Callable(
        choose_login_limit_storage, config.redis_url, auth_engine
    )
    # /api: tokens verified in-process (local) or by the auth service (remote, cached)
    token_verifier = providers.Selector(
        config.auth_mode,
        local=verify_bearer_token,
        remote=providers.Singleton(RemoteTokenVerifier, config.auth_url, config.auth_cache_s),
    )
    authenticator = providers.Singleton(BearerAuthenticator, token_verifier)
    # live streams: re-checked with the same verifier, capped per user in the lab database
    stream_lease_s = providers.Callable(live_streams.lease_for, config.stream_recheck_s)
    open_stream = providers.Factory(
        live_streams.OpenStream,
        uow.provider,
        clock,
        ids,
        config.max_streams_per_user,
        stream_lease_s,
    )
    # one re-check pass per process for all its open streams
    keep_streams_open = providers.ThreadSafeSingleton(
        live_streams.KeepStreamsOpen,
        token_verifier,
        uow.provider,
        clock,
        open_stream,
        stream_lease_s,
        config.stream_recheck_s,
    )
    close_stream = providers.Factory(live_streams.CloseStream, uow.provider)
    # /auth is the auth service itself: it always checks its own store
    auth_service_authenticator = providers.Singleton(BearerAuthenticator, verify_bearer_token)

    # devices
    register_device = providers.Factory(devices.RegisterDevice, uow.provider, clock, ids)
    get_device = providers.Factory(devices.GetDevice, uow.provider)
    list_devices = providers.Factory(devices.ListDevices, uow.provider)
    update_device = providers.Factory(devices.UpdateDevice, uow.provider, clock)
    delete_device = providers.Factory(devices.DeleteDevice, uow.provider)
    # with ids: a device that becomes available is booked for the queue right away
    set_device_status = providers.Factory(devices.SetDeviceStatus, uow.provider, clock, ids)
    record_heartbeat = providers.Factory(devices.RecordHeartbeat, uow.provider, clock, ids)
    get_device_history = providers.Factory(devices.GetDeviceHistory, uow.provider)

    # health checks
    create_health_check = providers.Factory(
        health_checks.CreateHealthCheck, uow.provider, clock, ids
    )
    update_health_check = providers.Factory(health_checks.UpdateHealthCheck, uow.provider, clock)
    delete_health_check = providers.Factory(health_checks.DeleteHealthCheck, uow.provider)
    get_health_check = providers.Factory(health_checks.GetHealthCheck, uow.provider)
    list_health_checks = providers.Factory(health_checks.ListHealthChecks, uow.provider)
    clear_device_health = providers.Factory(
        health_checks.ClearDeviceHealth, uow.provider, clock, ids
    )
    start_due_health_checks = providers.Factory(
        health_checks.StartDueHealthChecks,
        uow.provider,
        clock,
        ids,
        config.queue_allowance_s,
        config.queue_timeout_s,
    )
    mark_silent_devices_offline = providers.Factory(
        devices.MarkSilentDevicesOffline, uow.provider, clock, config.device_silence_s
    )

    # catalog
    create_test_case = providers.Factory(catalog.CreateTestCase, uow.provider, clock, ids)
    update_test_case = providers.Factory(catalog.UpdateTestCase, uow.provider, clock)
    delete_test_case = providers.Factory(catalog.DeleteTestCase, uow.provider)
    get_test_case = providers.Factory(catalog.GetTestCase, uow.provider)
    list_test_cases = providers.Factory(catalog.ListTestCases, uow.provider)
    create_environment = providers.Factory(catalog.CreateEnvironment, uow.provider, clock, ids)
    update_environment = providers.Factory(catalog.UpdateEnvironment, uow.provider, clock)
    delete_environment = providers.Factory(catalog.DeleteEnvironment, uow.provider)
    get_environment = providers.Factory(catalog.GetEnvironment, uow.provider)
    list_environments = providers.Factory(catalog.ListEnvironments, uow.provider)

    # test runs
    start_test_run = providers.Factory(
        test_runs.StartTestRun,
        uow.provider,
        clock,
        ids,
        config.queue_allowance_s,
        config.queue_timeout_s,
    )
    schedule_waiting_runs = providers.Factory(
        scheduling.ScheduleWaitingRuns, uow.provider, clock, ids
    )
    get_queue = providers.Factory(scheduling.GetQueue, uow.provider, clock)
    estimate_queue = providers.Factory(
        queue_estimates.EstimateQueue, uow.provider, clock, config.estimate_limit
    )
    get_test_run = providers.Factory(test_runs.GetTestRun, uow.provider)
    list_test_runs = providers.Factory(test_runs.ListTestRuns, uow.provider)
    export_test_runs = providers.Factory(run_exports.ExportTestRuns, uow.provider)
    cancel_test_run = providers.Factory(test_runs.CancelTestRun, uow.provider, clock, ids)
    record_run_started = providers.Factory(
        test_runs.RecordRunStarted, uow.provider, clock, ids, config.claim_lease_s
    )
    record_run_progress = providers.Factory(
        test_runs.RecordRunProgress, uow.provider, clock, ids, config.progress_lease_s
    )
    record_run_result = providers.Factory(test_runs.RecordRunResult, uow.provider, clock, ids)
    record_run_released = providers.Factory(test_runs.RecordRunReleased, uow.provider, clock, ids)
    record_run_failure = providers.Factory(test_runs.RecordRunFailure, uow.provider, clock, ids)
    expire_overdue_runs = providers.Factory(test_runs.ExpireOverdueRuns, uow.provider, clock, ids)
    reoffer_abandoned_jobs = providers.Factory(
        test_runs.ReofferAbandonedJobs,
        uow.provider,
        clock,
        ids,
        config.reoffer_after_s,
        config.reoffer_limit,
    )

    # the runner registry: runners seen in their reports, drained by admins
    list_runners = providers.Factory(
        runners.ListRunners, uow.provider, clock, config.runner_silent_after_s
    )
    get_runner = providers.Factory(
        runners.GetRunner, uow.provider, clock, config.runner_silent_after_s
    )
    drain_runner = providers.Factory(
        runners.DrainRunner, uow.provider, clock, ids, config.runner_silent_after_s
    )
    undrain_runner = providers.Factory(
        runners.UndrainRunner, uow.provider, clock, ids, config.runner_silent_after_s
    )

    # holds: devices kept for manual work, in the same queue as runs
    place_hold = providers.Factory(
        holds.PlaceHold, uow.provider, clock, ids, config.max_hold_s, config.queue_timeout_s
    )
    release_hold = providers.Factory(holds.ReleaseHold, uow.provider, clock, ids)
    extend_hold = providers.Factory(holds.ExtendHold, uow.provider, clock, config.max_hold_s)
    get_hold = providers.Factory(holds.GetHold, uow.provider)
    list_holds = providers.Factory(holds.ListHolds, uow.provider)
    expire_holds = providers.Factory(holds.ExpireHolds, uow.provider, clock, ids)

    # webhooks: subscriptions over HTTP, deliveries by the worker
    webhook_policy = providers.Singleton(TargetPolicy.parse, config.webhook_allowed_hosts)
    webhook_retry = providers.Singleton(
        RetryPolicy,
        first_delay_s=config.webhook_first_retry_s,
        retry_for_s=config.webhook_retry_for_s,
    )
    webhook_resolver = providers.Singleton(SystemResolver)
    webhook_sender = providers.Singleton(HttpWebhookSender, config.webhook_timeout_s)
    subscribe_webhook = providers.Factory(
        webhooks.Subscribe, uow.provider, clock, ids, webhook_policy, webhook_resolver
    )
    list_webhooks = providers.Factory(webhooks.ListSubscriptions, uow.provider)
    get_webhook = providers.Factory(webhooks.GetSubscription, uow.provider)
    unsubscribe_webhook = providers.Factory(webhooks.Unsubscribe, uow.provider)
    list_webhook_deliveries = providers.Factory(webhooks.ListDeliveries, uow.provider)
    ping_webhook = providers.Factory(webhooks.Ping, uow.provider, clock, ids)
    announce_expiring_holds = providers.Factory(
        webhooks.AnnounceExpiringHolds, uow.provider, clock, ids, config.webhook_hold_warning_s
    )
    dispatch_webhook_events = providers.Factory(
        webhooks.DispatchWebhookEvents, uow.provider, clock, ids
    )
    deliver_webhooks = providers.Factory(
        webhooks.DeliverWebhooks,
        uow.provider,
        clock,
        webhook_sender,
        webhook_resolver,
        webhook_policy,
        webhook_retry,
        claim_s=providers.Callable(lambda t: 3 * t + 5, config.webhook_timeout_s),
    )

    # test plans: defined over HTTP, started by hand or by the worker's triggers
    plan_starter = providers.Factory(
        plans.PlanStarter, ids, config.queue_allowance_s, config.queue_timeout_s
    )
    create_plan = providers.Factory(plans.CreatePlan, uow.provider, clock, ids)
    update_plan = providers.Factory(plans.UpdatePlan, uow.provider, clock)
    delete_plan = providers.Factory(plans.DeletePlan, uow.provider)
    get_plan = providers.Factory(plans.GetPlan, uow.provider)
    list_plans = providers.Factory(plans.ListPlans, uow.provider)
    start_plan = providers.Factory(plans.StartPlan, uow.provider, clock, plan_starter)
    get_plan_run = providers.Factory(plans.GetPlanRun, uow.provider)
    list_plan_runs = providers.Factory(plans.ListPlanRuns, uow.provider)
    fire_cron_triggers = providers.Factory(
        plans.FireCronTriggers, uow.provider, clock, plan_starter
    )
    fire_firmware_triggers = providers.Factory(
        plans.FireFirmwareTriggers, uow.provider, clock, plan_starter
    )
    announce_plan_run_finished = providers.Factory(webhooks.AnnouncePlanRunFinished, ids, clock)
    settle_plan_runs = providers.Factory(
        plans.SettlePlanRuns, uow.provider, clock, announce_plan_run_finished
    )

    # a run's logs and artifacts
    log_limits = providers.Singleton(
        LogLimits, config.max_log_lines_per_run, config.max_log_bytes_per_run
    )
    append_run_logs = providers.Factory(run_logs.AppendRunLogs, uow.provider, clock, log_limits)
    list_run_logs = providers.Factory(run_logs.ListRunLogs, uow.provider)
    export_run_log = providers.Factory(run_logs.ExportRunLog, uow.provider)
    read_log_tail = providers.Factory(run_logs.ReadLogTail, uow.provider)
    purge_run_logs = providers.Factory(run_logs.PurgeRunLogs, uow.provider, clock)
    artifact_storage = providers.Selector(
        config.artifact_store,
        filesystem=providers.Singleton(FilesystemArtifactStorage, config.artifact_dir),
        database=providers.Singleton(DatabaseArtifactStorage, engine),
    )
    store_artifact = providers.Factory(
        artifacts.StoreArtifact,
        uow.provider,
        artifact_storage,
        clock,
        ids,
        config.max_artifact_bytes,
        config.max_artifact_bytes_per_run,
    )
    list_artifacts = providers.Factory(artifacts.ListArtifacts, uow.provider)
    open_artifact = providers.Factory(artifacts.OpenArtifact, uow.provider, artifact_storage)
    purge_artifacts = providers.Factory(
        artifacts.PurgeArtifacts, uow.provider, artifact_storage, clock
    )


def dispose_engines(container: Container) -> None:
    """Close the pooled connections of every engine the container may have opened."""
    for engine in (
        container.engine,
        container.read_engine,
        container.auth_engine,
        container.auth_read_engine,
    ):
        engine().dispose()
