"""The dependency-injector container: the one place concrete objects are chosen and built."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.auth.run_credentials import SignedRunCredentials
from adapters.clocks import SystemClock
from adapters.http.security import OpenAccess
from adapters.identifiers import UuidGenerator
from adapters.messaging.publisher import BrokerCheck, KombuPublisher
from adapters.messaging.topology import Topology
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.readiness import DatabaseCheck
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases import catalog, devices, live_updates, relay, statistics, test_runs


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(packages=["adapters.http"])

    config = providers.Configuration(strict=True)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidGenerator)

    engine = providers.Singleton(make_engine, config.database_url)
    session_factory = providers.Singleton(make_session_factory, engine)
    uow = providers.Factory(SqlAlchemyUnitOfWork, session_factory)
    readiness_checks = providers.List(
        providers.Singleton(DatabaseCheck, engine),
        providers.Singleton(BrokerCheck, config.broker_url),
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
    read_changes = providers.Factory(live_updates.ReadChanges, uow.provider)
    get_lab_statistics = providers.Factory(statistics.GetLabStatistics, uow.provider, clock)

    authenticator = providers.Singleton(OpenAccess)

    # devices
    register_device = providers.Factory(devices.RegisterDevice, uow.provider, clock, ids)
    get_device = providers.Factory(devices.GetDevice, uow.provider)
    list_devices = providers.Factory(devices.ListDevices, uow.provider)
    update_device = providers.Factory(devices.UpdateDevice, uow.provider, clock)
    delete_device = providers.Factory(devices.DeleteDevice, uow.provider)
    set_device_status = providers.Factory(devices.SetDeviceStatus, uow.provider, clock)
    record_heartbeat = providers.Factory(devices.RecordHeartbeat, uow.provider, clock)
    get_device_history = providers.Factory(devices.GetDeviceHistory, uow.provider)
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
        test_runs.StartTestRun, uow.provider, clock, ids, config.queue_allowance_s
    )
    get_test_run = providers.Factory(test_runs.GetTestRun, uow.provider)
    list_test_runs = providers.Factory(test_runs.ListTestRuns, uow.provider)
    cancel_test_run = providers.Factory(test_runs.CancelTestRun, uow.provider, clock, ids)
    record_run_started = providers.Factory(
        test_runs.RecordRunStarted, uow.provider, clock, ids, config.progress_lease_s
    )
    record_run_progress = providers.Factory(
        test_runs.RecordRunProgress, uow.provider, clock, ids, config.progress_lease_s
    )
    record_run_result = providers.Factory(test_runs.RecordRunResult, uow.provider, clock, ids)
    record_run_failure = providers.Factory(test_runs.RecordRunFailure, uow.provider, clock, ids)
    expire_overdue_runs = providers.Factory(test_runs.ExpireOverdueRuns, uow.provider, clock, ids)
