"""Property tests: random sequences of operations keep devices and runs consistent.

(a) `LabMachine` drives a handful of devices and runs through the use cases on the in-memory
    adapters with a settable clock, predicting the outcome of every step from a small model.
(b) `DeviceMachine` drives a single `Device` through its own transitions.
"""

from __future__ import annotations

import operator
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.job_contract import CANCEL_KIND, JOB_KIND
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import (
    MarkSilentDevicesOffline,
    RecordHeartbeat,
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatus,
    SetDeviceStatusRequest,
)
from application.use_cases.test_runs import (
    CancelTestRun,
    ExpireOverdueRuns,
    ProgressReport,
    RecordRunFailure,
    RecordRunProgress,
    RecordRunReleased,
    RecordRunResult,
    RecordRunStarted,
    ReofferAbandonedJobs,
    StartTestRun,
    StartTestRunRequest,
)
from domain.devices import MANUAL_STATES, Device, DeviceStatus, ServiceState
from domain.errors import (
    ConflictingReport,
    DeviceUnavailable,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
)
from domain.test_cases import TestCaseSnapshot
from domain.test_runs import Observation, ResultReport, RunStatus, TestRun, Verdict

PROPERTY = settings.get_profile("devicelab-unit")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

DEVICE_COUNT = 5
MAX_SILENCE_S = 300
QUEUE_ALLOWANCE_S = 120
LEASE_S = 200
TAKEOVER_AFTER_S = 250
REOFFER_AFTER_S = 260  # longer than the claim lease, as the settings demand
MAX_REOFFERS = 2
CASES = {
    "voltage": [CriterionInput("voltage", "<=", 240)],
    "power": [CriterionInput("power", ">=", 100), CriterionInput("power_factor", ">", 0.9)],
}
COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def expected_pair_verdict(case: TestCaseSnapshot, report: ResultReport | None) -> Verdict:
    """An independent statement of the rules: a failed criterion fails; anything unmeasured,
    or a runner error, is inconclusive; otherwise the pair passes."""
    if report is None:
        return Verdict.INCONCLUSIVE
    outcomes = []
    for criterion in case.criteria:
        values = [o.value for o in report.observations if o.metric == criterion.metric]
        if values:
            outcomes.append(COMPARE[criterion.condition.value](values[-1], criterion.threshold))
        else:
            outcomes.append(None)
    if False in outcomes:
        return Verdict.FAIL
    if report.error or None in outcomes:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def result_signature(run: TestRun, reports: list[ResultReport]) -> dict[tuple[str, str], object]:
    """What a final report amounts to per pair (the value judged for each criterion and the
    verdict), so two reports can be told apart the way the run should tell them apart."""
    by_pair = {(r.test_case_id, r.device_id): r for r in reports}
    cases = {c.id: c for c in run.test_cases}
    signature: dict[tuple[str, str], object] = {}
    for pair in run.expected_pairs:
        report = by_pair.get(pair)
        if report is None:
            signature[pair] = None
            continue
        judged = []
        for criterion in cases[pair[0]].criteria:
            values = [o.value for o in report.observations if o.metric == criterion.metric]
            judged.append(values[-1] if values else None)
        signature[pair] = (tuple(judged), expected_pair_verdict(cases[pair[0]], report))
    return signature


def expected_overall(verdicts: list[Verdict]) -> Verdict:
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts or not verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


# Observations refuse non-finite values (test_test_run_lifecycle.py checks that).
measured_value = st.one_of(
    st.sampled_from([230.0, 0.9, 100.0, 240.0, 250.0]),
    st.floats(min_value=0, max_value=300, allow_nan=False, allow_infinity=False),
)


def pair_report_parts(metric_count: int) -> st.SearchStrategy:
    """(skip the pair?, per metric: (leave it unmeasured?, its values), runner error?).
    Hypothesis leans towards 0 / False, so those mean the common case: report and measure."""
    rarely = st.integers(0, 5).map(lambda n: n == 5)
    measured = st.tuples(rarely, st.lists(measured_value, min_size=1, max_size=2))
    return st.tuples(rarely, st.tuples(*(measured for _ in range(metric_count))), rarely)


class LabMachine(RuleBasedStateMachine):
    """Devices and runs through the use cases. Each rule predicts its outcome (including
    which domain error, if any) from the committed state before it runs."""

    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.store = InMemoryStore()
        self.clock = SettableClock(T0)
        ids = SequentialIds()

        def uow(read_only: bool = False) -> InMemoryUnitOfWork:
            return InMemoryUnitOfWork(self.store, read_only)

        register = RegisterDevice(uow, self.clock, ids)
        self.device_ids = [
            register(RegisterDeviceRequest(name=f"meter-{n}")).id for n in range(DEVICE_COUNT)
        ]
        create_case = CreateTestCase(uow, self.clock, ids)
        self.case_ids = [
            create_case(TestCaseInput(name, criteria, duration_s=60, timeout_s=300)).id
            for name, criteria in CASES.items()
        ]
        self.environment_id = CreateEnvironment(uow, self.clock, ids)(EnvironmentInput("bench")).id

        self.start_test_run = StartTestRun(uow, self.clock, ids, QUEUE_ALLOWANCE_S)
        self.record_started = RecordRunStarted(uow, self.clock, ids, TAKEOVER_AFTER_S)
        self.record_released = RecordRunReleased(uow, self.clock, ids)
        self.record_progress = RecordRunProgress(uow, self.clock, ids, LEASE_S)
        self.record_result = RecordRunResult(uow, self.clock, ids)
        self.record_failure = RecordRunFailure(uow, self.clock, ids)
        self.cancel_test_run = CancelTestRun(uow, self.clock, ids)
        self.expire_overdue_runs = ExpireOverdueRuns(uow, self.clock, ids)
        self.reoffer = ReofferAbandonedJobs(uow, self.clock, ids, REOFFER_AFTER_S, MAX_REOFFERS)
        self.set_device_status = SetDeviceStatus(uow, self.clock)
        self.record_heartbeat = RecordHeartbeat(uow, self.clock)
        self.mark_silent_offline = MarkSilentDevicesOffline(uow, self.clock, MAX_SILENCE_S)

        # the final report each completed run accepted, and what it amounts to
        self.accepted_reports: dict[str, list[ResultReport]] = {}
        self.accepted: dict[str, dict[tuple[str, str], object]] = {}
        # when each running run last heard from its runner (start, progress or give-back)
        self.last_heard: dict[str, datetime] = {}
        # how often, and when last, each run's job was offered again
        self.reoffered: dict[str, tuple[int, datetime]] = {}
        # the service state each device must have, by the rules that changed it
        self.expected_state = {d: ServiceState.IN_SERVICE for d in self.device_ids}

    # -- reading committed state -------------------------------------------------------------

    def run(self, run_id: str) -> TestRun:
        return self.store.test_runs[run_id]

    def device(self, device_id: str) -> Device:
        return self.store.devices[device_id]

    def draw_reports(self, data: st.DataObject, run: TestRun) -> list[ResultReport]:
        """Reports for a random selection of the run's pairs, each measuring a random
        selection of its criteria (sometimes more than once, sometimes an unrelated metric).
        One draw for the lot keeps the machine fast."""
        cases = {c.id: c for c in run.test_cases}
        metrics = {
            pair: [c.metric for c in cases[pair[0]].criteria] + ["noise"]
            for pair in run.expected_pairs
        }
        parts = data.draw(
            st.tuples(
                st.tuples(*(pair_report_parts(len(metrics[pair])) for pair in run.expected_pairs)),
                st.randoms(use_true_random=False),
            ),
            "reports",
        )
        reports = []
        for pair, (skip, measured, error) in zip(run.expected_pairs, parts[0], strict=True):
            if skip:
                continue
            observations = [
                Observation(metric, value)
                for metric, (unmeasured, values) in zip(metrics[pair], measured, strict=True)
                if not unmeasured
                for value in values
            ]
            reports.append(ResultReport(*pair, tuple(observations), error=error))
        parts[1].shuffle(reports)
        return reports

    # -- rules: runs ---------------------------------------------------------------------------

    @initialize(
        target=runs,
        first=st.lists(st.sampled_from(range(3)), min_size=1, unique=True),
        second=st.lists(st.sampled_from(range(3, DEVICE_COUNT)), min_size=1, unique=True),
    )
    def two_runs_on_separate_devices(self, first: list[int], second: list[int]):
        """Every example starts with work in progress, so the interesting steps come early."""
        return multiple(*(self.start_run(devices, [0, 1]) for devices in (first, second)))

    @rule(
        target=runs,
        devices=st.lists(st.sampled_from(range(DEVICE_COUNT)), min_size=1, max_size=3, unique=True),
        cases=st.lists(st.sampled_from(range(len(CASES))), min_size=1, unique=True),
    )
    def start_run(self, devices: list[int], cases: list[int]):
        device_ids = [self.device_ids[i] for i in devices]
        busy = {
            d: self.device(d).status.value for d in device_ids if not self.device(d).is_available
        }
        runs_before, outbox_before = set(self.store.test_runs), len(self.store.outbox)
        holders_before = {d: self.device(d).held_by for d in self.device_ids}
        states_before = {d: self.device(d).service_state for d in device_ids}
        # today's refusal; runs that wait for busy devices are tested in test_run_queue.py
        request = StartTestRunRequest(
            [self.case_ids[i] for i in cases], self.environment_id, device_ids, when_busy="reject"
        )
        retired = [d for d, s in states_before.items() if s is ServiceState.RETIRED]
        try:
            run = self.start_test_run(request)
        except InvalidValue as impossible:  # a retired device can never take part
            assert retired, f"refused although no device is retired: {impossible}"
            assert all(d in str(impossible) for d in retired)
            assert set(self.store.test_runs) == runs_before
            assert len(self.store.outbox) == outbox_before
            return multiple()
        except DeviceUnavailable as refused:
            assert not retired, f"{retired} are retired: that is a 422, not a 409"

            assert refused.unavailable == busy
            assert set(self.store.test_runs) == runs_before
            assert len(self.store.outbox) == outbox_before
            assert {d: self.device(d).held_by for d in self.device_ids} == holders_before
            return multiple()
        assert not busy, f"{busy} were booked although unavailable"
        out_of_service = {
            d: s for d, s in states_before.items() if s is not ServiceState.IN_SERVICE
        }
        assert not out_of_service, f"{out_of_service} were booked although out of service"
        assert all(self.device(d).held_by == run.id for d in device_ids)
        assert self.run(run.id).status is RunStatus.QUEUED
        return run.id

    @rule(run_id=runs, runner=st.sampled_from(["runner-a", "runner-b", ""]))
    def record_run_started(self, run_id: str, runner: str) -> None:
        run = self.run(run_id)
        now = self.clock.now()
        contested = bool(
            run.status is RunStatus.RUNNING and runner and run.runner not in ("", runner)
        )
        last_heard = self.last_heard.get(run_id, now)
        taken_over = contested and (now - last_heard).total_seconds() > TAKEOVER_AFTER_S
        # a running run nobody claims (started by a nameless report, or given back)
        claimed = bool(run.status is RunStatus.RUNNING and runner and run.runner == "")
        try:
            outcome = self.record_started(run_id, runner)
        except RunAlreadyFinished:
            assert run.status.finished
            return
        except InvalidTransition:
            assert contested and not taken_over, "a start was refused without a rival runner"
            assert self.run(run_id).runner == run.runner
            return
        assert not run.status.finished
        assert not contested or taken_over, f"{runner} took the run from a live {run.runner}"
        assert outcome.changed is (run.status is RunStatus.QUEUED or taken_over or claimed)
        stored = self.run(run_id)
        assert stored.status is RunStatus.RUNNING
        assert stored.runner == (runner if outcome.changed else run.runner)
        if outcome.changed:  # a runner starts afresh: it has the whole timeout
            self.last_heard[run_id] = now
            assert stored.deadline >= now + timedelta(seconds=stored.timeout_s)

    @rule(run_id=runs, runner=st.sampled_from(["runner-a", "runner-b", ""]))
    def give_run_back(self, run_id: str, runner: str) -> None:
        run = self.run(run_id)
        try:
            outcome = self.record_released(run_id, runner)
        except RunAlreadyFinished:
            assert run.status.finished
            return
        assert not run.status.finished
        holds_the_claim = run.status is RunStatus.RUNNING and runner != "" and runner == run.runner
        assert outcome.changed is holds_the_claim
        assert outcome.released_device_ids == []
        stored = self.run(run_id)
        assert stored.status is run.status
        assert stored.runner == ("" if holds_the_claim else run.runner)
        if holds_the_claim:
            self.last_heard[run_id] = self.clock.now()

    @rule(run_id=runs, progress=st.floats(0, 1), data=st.data())
    def record_run_progress(self, run_id: str, progress: float, data: st.DataObject) -> None:
        run = self.run(run_id)
        partial = self.draw_reports(data, run)
        try:
            self.record_progress(run_id, ProgressReport(progress, "", partial))
        except RunAlreadyFinished:
            assert run.status.finished
            return
        assert not run.status.finished
        stored = self.run(run_id)
        assert (stored.status, stored.progress) == (RunStatus.RUNNING, progress)
        # every progress report is a heartbeat: it renews the runner's lease
        self.last_heard[run_id] = self.clock.now()
        assert stored.deadline >= self.clock.now() + timedelta(seconds=LEASE_S)
        cases = {c.id: c for c in stored.test_cases}
        for report in partial:
            result = stored.results[(report.test_case_id, report.device_id)]
            assert result.verdict is expected_pair_verdict(cases[report.test_case_id], report)

    @rule(run_id=runs, data=st.data())
    def record_run_result(self, run_id: str, data: st.DataObject) -> None:
        run = self.run(run_id)
        reports = self.draw_reports(data, run)
        try:
            outcome = self.record_result(run_id, reports)
        except RunAlreadyFinished:
            assert run.status in (RunStatus.FAILED, RunStatus.ABORTED)
            return
        except ConflictingReport:
            assert run.status is RunStatus.COMPLETED
            assert result_signature(run, reports) != self.accepted[run_id]
            return
        if run.status is RunStatus.COMPLETED:
            assert result_signature(run, reports) == self.accepted[run_id]
            assert (outcome.changed, outcome.released_device_ids) == (False, [])
            return
        assert outcome.changed
        assert sorted(outcome.released_device_ids) == sorted(run.device_ids)
        self.accepted_reports[run_id] = reports
        self.accepted[run_id] = result_signature(run, reports)
        stored = self.run(run_id)
        by_pair = {(r.test_case_id, r.device_id): r for r in reports}
        cases = {c.id: c for c in stored.test_cases}
        for pair, result in stored.results.items():
            assert result.verdict is expected_pair_verdict(cases[pair[0]], by_pair.get(pair))

    @precondition(lambda self: self.accepted_reports)
    @rule(data=st.data())
    def repeat_accepted_result(self, data: st.DataObject) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.accepted_reports)), "run")
        reports = list(reversed(self.accepted_reports[run_id]))
        outcome = self.record_result(run_id, reports)
        assert (outcome.changed, outcome.released_device_ids) == (False, [])

    @precondition(lambda self: self.accepted_reports)
    @rule(data=st.data())
    def contradict_accepted_result(self, data: st.DataObject) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.accepted_reports)), "run")
        accepted = self.accepted_reports[run_id]
        contradiction = accepted[1:] if accepted else []  # one pair less (or none at all)
        differs = result_signature(self.run(run_id), contradiction) != self.accepted[run_id]
        try:
            outcome = self.record_result(run_id, contradiction)
        except ConflictingReport:
            assert differs
        else:
            assert not differs and not outcome.changed
        assert self.run(run_id).results.keys() == set(self.run(run_id).expected_pairs)

    @rule(run_id=runs, reason=st.sampled_from(["runner crashed", "flash write failed"]))
    def record_run_failure(self, run_id: str, reason: str) -> None:
        run = self.run(run_id)
        same_failure = run.status is RunStatus.FAILED and run.failure_reason == reason
        try:
            outcome = self.record_failure(run_id, reason)
        except RunAlreadyFinished:
            assert run.status.finished and not same_failure
            return
        if same_failure:
            assert not outcome.changed
            return
        assert not run.status.finished
        assert sorted(outcome.released_device_ids) == sorted(run.device_ids)
        assert self.run(run_id).status is RunStatus.FAILED

    @rule(run_id=runs, by=st.sampled_from(["alice", "bob"]))
    def cancel_run(self, run_id: str, by: str) -> None:
        run = self.run(run_id)
        try:
            outcome = self.cancel_test_run(run_id, by=by)
        except InvalidTransition:
            assert run.status in (RunStatus.COMPLETED, RunStatus.FAILED)
            return
        if run.status is RunStatus.ABORTED:
            assert not outcome.changed
            return
        assert not run.status.finished
        assert outcome.changed
        assert sorted(outcome.released_device_ids) == sorted(run.device_ids)

    @rule(seconds=st.sampled_from([0, 1, 59, 150, 301, 700]))
    def advance_clock_and_expire_overdue_runs(self, seconds: int) -> None:
        self.clock.advance(seconds)
        now = self.clock.now()
        overdue = {
            run.id
            for run in self.store.test_runs.values()
            if not run.status.finished and run.deadline < now
        }
        assert set(self.expire_overdue_runs()) == overdue
        for run_id in overdue:
            assert (self.run(run_id).status, self.run(run_id).failure_reason) == (
                RunStatus.FAILED,
                "timeout",
            )

    @rule(seconds=st.sampled_from([0, 10, REOFFER_AFTER_S + 1]))
    def reoffer_jobs_of_silent_claimants(self, seconds: int) -> None:
        self.clock.advance(seconds)  # the reaper may not have run: an overdue run counts too
        now = self.clock.now()
        expected = set()
        for run in self.store.test_runs.values():
            if run.status is not RunStatus.RUNNING or not run.runner:
                continue
            count, offered_at = self.reoffered.get(run.id, (0, self.last_heard[run.id]))
            heard = max(self.last_heard[run.id], offered_at)
            if count < MAX_REOFFERS and (now - heard).total_seconds() > REOFFER_AFTER_S:
                expected.add(run.id)
        before = {
            run_id: (self.run(run_id).runner, self.run(run_id).deadline) for run_id in expected
        }

        assert set(self.reoffer()) == expected

        for run_id in expected:
            count, _ = self.reoffered.get(run_id, (0, now))
            self.reoffered[run_id] = (count + 1, now)
            stored = self.run(run_id)
            assert stored.status is RunStatus.RUNNING
            assert (stored.runner, stored.deadline) == before[run_id]

    # -- rules: devices ------------------------------------------------------------------------

    @rule(
        device=st.sampled_from(range(DEVICE_COUNT)),
        status=st.sampled_from(["available", "offline", "maintenance", "retired"]),
        admin=st.booleans(),
    )
    def set_status_by_hand(self, device: int, status: str, admin: bool) -> None:
        device_id = self.device_ids[device]
        holder = self.device(device_id).held_by
        state_before = self.device(device_id).service_state
        wanted = MANUAL_STATES[DeviceStatus(status)]
        refused = (
            state_before is ServiceState.RETIRED and wanted is not state_before and not admin
        ) or (wanted is ServiceState.RETIRED and holder is not None)
        request = SetDeviceStatusRequest(device_id, status, "bench", "bob", may_unretire=admin)
        try:
            self.set_device_status(request)
        except InvalidTransition:
            assert refused, f"{status} refused on a device {state_before.value}"
            assert self.device(device_id).service_state is state_before
            return
        assert not refused, f"{status} set on a device {state_before.value} (admin: {admin})"
        self.expected_state[device_id] = wanted
        stored = self.device(device_id)
        assert stored.held_by == holder
        assert stored.status.value == ("in_test" if holder else status)

    @rule(device=st.sampled_from(range(DEVICE_COUNT)), firmware=st.sampled_from([None, "1", "2"]))
    def heartbeat(self, device: int, firmware: str | None) -> None:
        device_id = self.device_ids[device]
        firmware_before = self.device(device_id).firmware_version
        state_before = self.device(device_id).service_state
        self.record_heartbeat(device_id, firmware)
        stored = self.device(device_id)
        assert stored.last_seen_at == self.clock.now()
        assert stored.firmware_version == (firmware or firmware_before)
        # only silence ends with a heartbeat; a state a person set never does
        if state_before is ServiceState.SILENT:
            self.expected_state[device_id] = ServiceState.IN_SERVICE
        assert stored.service_state is self.expected_state[device_id]

    @rule()
    def mark_silent_devices_offline(self) -> None:
        now = self.clock.now()
        silent = {
            d.id
            for d in self.store.devices.values()
            if d.service_state is ServiceState.IN_SERVICE
            and d.last_seen_at is not None
            and (now - d.last_seen_at).total_seconds() > MAX_SILENCE_S
        }
        assert set(self.mark_silent_offline()) == silent
        for device_id in silent:
            self.expected_state[device_id] = ServiceState.SILENT

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def service_states_change_only_by_their_rules_and_drained_devices_end_in_maintenance(
        self,
    ) -> None:
        """Runs ending by any path (result, failure, cancel, expiry) never change a service
        state; so a device set to maintenance while in test is in maintenance once let go."""
        for device_id, state in self.expected_state.items():
            device = self.device(device_id)
            assert device.service_state is state
            assert device.status is (DeviceStatus.IN_TEST if device.held_by else state.status)
            assert device.drain_pending is bool(
                device.held_by and state is ServiceState.MAINTENANCE
            )

    @invariant()
    def a_device_is_listed_by_at_most_one_unfinished_run(self) -> None:
        unfinished = [r for r in self.store.test_runs.values() if not r.status.finished]
        listed = Counter(d for run in unfinished for d in run.device_ids)
        assert all(count == 1 for count in listed.values()), listed

    @invariant()
    def a_device_in_test_is_held_by_an_unfinished_run_that_lists_it(self) -> None:
        for device in self.store.devices.values():
            if device.status is DeviceStatus.IN_TEST:
                holder = self.store.test_runs.get(device.held_by or "")
                assert holder is not None, f"{device.id} is held by an unknown run"
                assert not holder.status.finished
                assert device.id in holder.device_ids

    @invariant()
    def only_unfinished_runs_hold_devices_and_they_hold_all_of_theirs(self) -> None:
        held = {d.id: d.held_by for d in self.store.devices.values()}
        for run in self.store.test_runs.values():
            holding = {d for d, holder in held.items() if holder == run.id}
            if run.status.finished:
                assert holding == set(), f"finished run {run.id} still holds {holding}"
            else:
                assert holding == set(run.device_ids)

    @invariant()
    def a_running_run_remembers_when_its_runner_last_reported(self) -> None:
        for run in self.store.test_runs.values():
            if run.status is RunStatus.RUNNING:
                assert run.last_report_at == self.last_heard[run.id]

    @invariant()
    def a_completed_run_has_the_verdict_its_results_imply(self) -> None:
        for run in self.store.test_runs.values():
            if run.status is RunStatus.COMPLETED:
                assert set(run.results) == set(run.expected_pairs)
                verdicts = [r.verdict for r in run.results.values()]
                assert run.verdict is expected_overall(verdicts)
            else:
                assert run.verdict is None

    @invariant()
    def one_job_per_run_and_offer_and_one_cancel_per_aborted_run(self) -> None:
        jobs = [m.run_id for m in self.store.outbox if m.kind == JOB_KIND]
        cancels = [m.run_id for m in self.store.outbox if m.kind == CANCEL_KIND]
        aborted = [r.id for r in self.store.test_runs.values() if r.status is RunStatus.ABORTED]
        offered_again = [r for r, (count, _) in self.reoffered.items() for _ in range(count)]
        assert sorted(jobs) == sorted([*self.store.test_runs, *offered_again])
        assert sorted(cancels) == sorted(aborted)

    @invariant()
    def device_history_is_a_chain_of_real_changes_ending_in_the_current_status(self) -> None:
        for device in self.store.devices.values():
            history = self.store.history.get(device.id, [])
            current = DeviceStatus.AVAILABLE
            for change in history:
                assert change.from_status is current
                assert change.to_status is not change.from_status
                current = change.to_status
            assert current is device.status


TestLabMachine = LabMachine.TestCase
TestLabMachine.settings = PROPERTY


# -- (b) a single device -----------------------------------------------------------------------


RUN_IDS = ["run-1", "run-2", "run-3"]


class DeviceMachine(RuleBasedStateMachine):
    """One device against a two-fact model: which run holds it, and its service state. Every
    real status change, and only those, must appear in its history."""

    def __init__(self) -> None:
        super().__init__()
        self.device = Device(id="dev-1", name="meter-01")
        self.holder: str | None = None
        self.state = ServiceState.IN_SERVICE
        self.seconds = 0
        self.expected_history: list[tuple[DeviceStatus, DeviceStatus, str | None]] = []

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)

    def model_status(self) -> DeviceStatus:
        if self.holder is not None:
            return DeviceStatus.IN_TEST
        return self.state.status

    def expect_change(self, before: DeviceStatus, run_id: str | None) -> None:
        after = self.model_status()
        if after is not before:
            self.expected_history.append((before, after, run_id))

    @rule(run_id=st.sampled_from(RUN_IDS))
    def reserve(self, run_id: str) -> None:
        before = self.model_status()
        out_of_service = self.state is not ServiceState.IN_SERVICE
        if self.holder not in (None, run_id) or (self.holder is None and out_of_service):
            try:
                self.device.reserve(run_id, self.now(), "alice")
            except InvalidTransition:
                return
            raise AssertionError(f"reserved for {run_id} while {before.value}")
        self.device.reserve(run_id, self.now(), "alice")
        self.holder = run_id
        self.expect_change(before, run_id)

    @rule(run_id=st.sampled_from(RUN_IDS))
    def release(self, run_id: str) -> None:
        before = self.model_status()
        if self.holder is not None and self.holder != run_id:
            try:
                self.device.release(run_id, self.now(), "runner")
            except InvalidTransition:
                return
            raise AssertionError(f"{run_id} released a device held by {self.holder}")
        drained = self.holder == run_id and self.state is ServiceState.MAINTENANCE
        released = self.device.release(run_id, self.now(), "runner")
        assert released is (self.holder == run_id)
        self.holder = None
        self.expect_change(before, run_id)
        if drained:
            assert self.device.status is DeviceStatus.MAINTENANCE

    @rule(
        state=st.sampled_from(
            [
                ServiceState.IN_SERVICE,
                ServiceState.OFFLINE,
                ServiceState.MAINTENANCE,
                ServiceState.RETIRED,
            ]
        ),
        admin=st.booleans(),
    )
    def set_by_hand(self, state: ServiceState, admin: bool) -> None:
        """Offline, maintenance (a drain while in test), retire, or back in service."""
        before = self.model_status()
        refused = (
            self.state is ServiceState.RETIRED and state is not self.state and not admin
        ) or (state is ServiceState.RETIRED and self.holder is not None)
        try:
            self.device.set_service_state(state, self.now(), "bob", "bench", may_unretire=admin)
        except InvalidTransition:
            assert refused
            return
        assert not refused
        self.state = state
        self.expect_change(before, self.holder)

    @rule()
    def fall_silent(self) -> None:
        before = self.model_status()
        changed = self.device.fall_silent(self.now(), "heartbeat monitor", "no heartbeat")
        assert changed is (self.state is ServiceState.IN_SERVICE)
        if changed:
            self.state = ServiceState.SILENT
        self.expect_change(before, self.holder)

    @rule(firmware=st.sampled_from([None, "", "1.0", "2.0"]))
    def heartbeat(self, firmware: str | None) -> None:
        before = self.model_status()
        known = self.device.firmware_version
        self.device.heartbeat(self.now(), firmware)
        # a heartbeat ends silence and nothing else: a state a person set stays
        if self.state is ServiceState.SILENT:
            self.state = ServiceState.IN_SERVICE
        self.expect_change(before, self.holder)
        assert self.device.last_seen_at == self.now()
        assert self.device.firmware_version == (firmware or known)

    @rule(seconds=st.integers(1, 600))
    def time_passes(self, seconds: int) -> None:
        self.seconds += seconds

    @invariant()
    def status_follows_the_model(self) -> None:
        assert self.device.service_state is self.state
        assert (self.device.service_note is None) is (self.state is ServiceState.IN_SERVICE)
        assert self.device.drain_pending is bool(
            self.holder and self.state is ServiceState.MAINTENANCE
        )
        assert self.device.status is self.model_status()
        assert self.device.held_by == self.holder
        assert self.device.is_available is (self.model_status() is DeviceStatus.AVAILABLE)

    @invariant()
    def history_holds_exactly_the_real_changes(self) -> None:
        recorded = [(c.from_status, c.to_status, c.run_id) for c in self.device.new_history]
        assert recorded == self.expected_history

    @invariant()
    def only_a_device_out_of_test_can_be_deleted(self) -> None:
        try:
            self.device.ensure_can_be_deleted()
        except InvalidTransition:
            assert self.holder is not None
        else:
            assert self.holder is None

    @invariant()
    def silence_depends_only_on_the_last_heartbeat(self) -> None:
        last_seen = self.device.last_seen_at
        if last_seen is None:
            assert not self.device.is_silent(self.now(), 0)
        else:
            silence = (self.now() - last_seen).total_seconds()
            assert self.device.is_silent(self.now(), 300) is (silence > 300)


TestDeviceMachine = DeviceMachine.TestCase
TestDeviceMachine.settings = PROPERTY
