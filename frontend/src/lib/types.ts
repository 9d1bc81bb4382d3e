// Shapes of the devicelab API (see /api/openapi.json and the auth contract).

export type DeviceStatus = 'available' | 'in_test' | 'held' | 'offline' | 'maintenance' | 'retired';
/** Why a device is out of service, if it is: `silent` (no heartbeats; the next one ends it),
 * or a state a person set (`offline`, `maintenance`, `retired`) that only a person ends. */
export type ServiceState = 'in_service' | 'silent' | 'offline' | 'maintenance' | 'retired';
/** The statuses a person sets through POST /api/devices/{id}/status. */
export type ManualStatus = 'available' | 'offline' | 'maintenance' | 'retired';
export type RunStatus = 'waiting' | 'queued' | 'running' | 'completed' | 'failed' | 'aborted';
export type Verdict = 'pass' | 'marginal' | 'fail' | 'inconclusive';
export type Role = 'admin' | 'engineer' | 'viewer';
export type Condition = '<' | '<=' | '>' | '>=' | '==' | '!=' | 'between' | 'within_percent';
/** What of a measured series a criterion judges. */
export type Statistic = 'final' | 'all' | 'p95' | 'mean' | 'max' | 'min';
export type Outcome = 'pass' | 'marginal' | 'fail' | 'inconclusive';

export const DEVICE_STATUSES: DeviceStatus[] = ['available', 'in_test', 'held', 'offline', 'maintenance', 'retired'];
export const RUN_STATUSES: RunStatus[] = ['waiting', 'queued', 'running', 'completed', 'failed', 'aborted'];
export const VERDICTS: Verdict[] = ['pass', 'marginal', 'fail', 'inconclusive'];
export const ROLES: Role[] = ['admin', 'engineer', 'viewer'];
export const CONDITIONS: Condition[] = ['<', '<=', '>', '>=', '==', '!=', 'between', 'within_percent'];
export const STATISTICS: Statistic[] = ['final', 'all', 'p95', 'mean', 'max', 'min'];

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** The device list's filters, as the API takes them (and `deviceMatches` applies them). */
export interface DeviceFilters {
  status?: string;
  q?: string;
  label?: string;
  /** without a status filter, list retired devices too (the API leaves them out) */
  include_retired?: boolean;
}

/** The run list's filters, as the API takes them (and `runMatches` applies them). */
export interface RunFilters {
  status?: string;
  verdict?: string;
  /** normal or health_check */
  purpose?: string;
  device_id?: string;
  environment_id?: string;
  test_case_id?: string;
  firmware?: string;
  from?: string;
  to?: string;
}

export interface DeviceWrite {
  name: string;
  model: string;
  serial: string;
  firmware_version: string;
  location: string;
  labels: Record<string, string>;
  status?: 'available' | 'offline';
}

export interface Device extends Omit<DeviceWrite, 'status'> {
  id: string;
  status: DeviceStatus;
  run_id: string | null;
  offline_pending: boolean;
  /** set to maintenance while in a test: goes to maintenance when its run ends */
  drain_pending: boolean;
  service_state: ServiceState;
  /** who took the device out of service, why and since when; null while in service */
  out_of_service: ServiceNote | null;
  /** who holds the device for manual work and until when (servers with holds only) */
  hold?: DeviceHold | null;
  /** what its health checks say (servers with health checks only) */
  health?: DeviceHealth;
  /** what set the health: the health-check run, or who cleared it */
  health_note?: HealthNote | null;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
}

export type DeviceHealth = 'good' | 'unknown' | 'bad';

export interface HealthNote {
  run_id: string | null;
  reason: string;
  by: string;
  since: string;
}

/** A test case the worker runs by itself on every device of a model and/or with labels. */
export interface HealthCheckWrite {
  name: string;
  test_case_id: string;
  environment_id: string;
  model: string;
  labels: Record<string, string>;
  every_hours: number | null;
  every_runs: number | null;
  after_service: boolean;
}

export interface HealthCheck extends HealthCheckWrite {
  id: string;
  created_at: string;
  updated_at: string;
}

export type RunPurpose = 'normal' | 'health_check';

export interface ServiceNote {
  by: string;
  reason: string;
  since: string;
}

export interface DeviceHold {
  id: string;
  holder: string;
  until: string | null;
  reason: string;
}

export interface StatusChange {
  at: string;
  from_status: DeviceStatus;
  to_status: DeviceStatus;
  actor: string;
  reason: string;
  run_id: string | null;
}

/** A passing value with min <= value <= max (either may be open) is marginal. */
export interface MarginalBand {
  min: number | null;
  max: number | null;
}

/** `threshold` for < … !=, `min`/`max` for between, `nominal`/`percent` for within_percent. */
export interface Criterion {
  metric: string;
  condition: Condition;
  threshold?: number | null;
  min?: number | null;
  max?: number | null;
  nominal?: number | null;
  percent?: number | null;
  unit: string;
  of?: Statistic;
  marginal?: MarginalBand | null;
}

/** '' leaves the choice to the runner's default executor. */
export type Executor = '' | 'simulate' | 'command' | 'influxdb';

/** How a test case is executed; only users with permission executions:define (admins) set it. */
export interface Execution {
  executor: Executor;
  /** The command executor's program and fixed arguments (no shell). */
  command: string[];
  /** false: the command runs once for all the run's devices. */
  per_device: boolean;
}

export interface TestCaseWrite {
  name: string;
  description: string;
  criteria: Criterion[];
  duration_s: number;
  timeout_s: number;
  default_parameters: Record<string, unknown>;
  tags: string[];
  /** Left out: the runner's default on create, unchanged on edit. */
  execution?: Execution;
}

export interface TestCase extends TestCaseWrite {
  execution: Execution;
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface EnvironmentWrite {
  name: string;
  description: string;
  variables: Record<string, string>;
}

export interface Environment extends EnvironmentWrite {
  id: string;
  created_at: string;
  updated_at: string;
}

export interface Measurement {
  metric: string;
  condition: Condition;
  threshold: number | null;
  unit: string;
  value: number | null;
  /** true for pass and marginal; null: inconclusive (reason says why). */
  passed: boolean | null;
  outcome?: Outcome;
  reason?: string;
  of?: Statistic;
  /** What the criterion asks of the value, in words: `<= 240 V`. */
  expected?: string;
  /** [t seconds from the case's start, value]; only on one run's own answer. */
  samples?: [number, number][];
}

export interface CaseResult {
  test_case_id: string;
  device_id: string;
  verdict: Verdict;
  measurements: Measurement[];
  message: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface TestCaseSnapshot {
  id: string;
  version: number;
  name: string;
  description: string;
  criteria: Criterion[];
  duration_s: number;
  timeout_s: number;
  parameters: Record<string, unknown>;
  tags: string[];
  execution: Execution;
}

export interface DeviceSnapshot {
  id: string;
  name: string;
  model: string;
  serial: string;
  firmware_version: string;
  labels: Record<string, string>;
  /** The role of the device request it fills; null for a device named by id. */
  role?: string | null;
}

export type Priority = 'low' | 'normal' | 'high';

export interface DeviceRequest {
  role: string | null;
  model: string | null;
  labels: Record<string, string>;
  count: number;
}

/** What a waiting run waits for (GET /api/queue, and runs while waiting). */
export interface WaitingFor {
  /** Named devices not free for it, with why: busy, offline, "kept for an earlier item"… */
  devices: Record<string, string>;
  requests: { request: number; description: string; missing: number; free_for_it: number; kept_for_earlier: number }[];
}

export interface TestRun {
  id: string;
  status: RunStatus;
  /** health_check: started by the worker to judge its device (servers with health checks) */
  purpose?: RunPurpose;
  verdict: Verdict | null;
  test_cases: TestCaseSnapshot[];
  environment: { id: string; name: string; description: string; variables: Record<string, string> };
  devices: DeviceSnapshot[];
  parameters: Record<string, unknown>;
  started_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  deadline: string;
  failure_reason: string;
  progress: number;
  progress_message: string;
  last_report_at: string | null;
  results: CaseResult[];
  grafana_url?: string | null;
  priority?: Priority;
  device_requests?: DeviceRequest[];
  queue_timeout_at?: string | null;
  /** 1-based place in the queue while the run waits for its devices; else null. */
  position?: number | null;
  waiting_for?: WaitingFor | null;
  /** When the worker expects it to get its devices; null when it cannot tell (or not computed). */
  estimated_start_at?: string | null;
  requested_device_ids?: string[];
}

export type WhenBusy = 'queue' | 'reject';

export interface StartRunRequest {
  test_case_ids: string[];
  environment_id: string;
  device_ids: string[];
  device_requests?: DeviceRequest[];
  parameters: Record<string, unknown>;
  /** queue (the API's default): wait for busy devices; reject: 409 unless all are free now. */
  when_busy?: WhenBusy;
  priority?: Priority;
  queue_timeout_s?: number | null;
}

export type HoldStatus = 'waiting' | 'active' | 'ended';

/** Devices held for manual work (POST /api/holds); it waits in the queue like a run. */
export interface Hold {
  id: string;
  status: HoldStatus;
  holder: string;
  reason: string;
  priority: Priority;
  duration_s: number;
  device_ids: string[];
  device_requests: DeviceRequest[];
  devices: { id: string; name: string; model: string; role: string | null }[];
  created_at: string;
  started_at: string | null;
  expires_at: string | null;
  ended_at: string | null;
  ended_by: string | null;
  end_reason: string | null;
  position: number | null;
  estimated_start_at: string | null;
  waiting_for: WaitingFor | null;
  version?: number;
}

export interface HoldRequest {
  device_ids?: string[];
  device_requests?: DeviceRequest[];
  duration_s: number;
  reason: string;
  priority?: Priority;
  when_busy?: WhenBusy;
  queue_timeout_s?: number | null;
}

/** One place in GET /api/queue: a waiting run or hold (servers before holds send runs only,
 * without `kind`). */
export interface QueueItem {
  position: number;
  kind?: 'run' | 'hold';
  run: TestRun | null;
  hold?: Hold | null;
  waiting_for: WaitingFor | null;
  estimated_start_at: string | null;
}

/** GET /api/stats "queue" (servers with holds and estimates). */
export interface QueueStats {
  length: number;
  longest_wait_s: number | null;
  oldest_waiting_since: string | null;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  disabled?: boolean;
  /** Signed in with a temporary password (an admin's reset): it must be changed first. */
  must_change_password?: boolean;
  /** A pipeline's identity: no password, cannot sign in, acts through API tokens. */
  service_account?: boolean;
  created_at?: string;
  last_login_at?: string | null;
}

export interface LoginResponse {
  token: string;
  token_type: 'Bearer';
  expires_at: string;
  user: User;
}

export interface SessionInfo {
  id: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string;
  current?: boolean;
  user_agent?: string;
  /** Where the session was opened from, as the server saw it ('' when unknown). */
  client_ip?: string;
}

export interface PasswordReset {
  user: User;
  /** Shown once: the user signs in with it and must then choose their own. */
  temporary_password: string;
  sessions_ended: number;
}

export interface CurrentSession {
  user: User;
  session: SessionInfo;
}

export interface Stats {
  devices_by_status: Record<DeviceStatus, number>;
  runs_by_status: Record<RunStatus, number>;
  pass_rate_by_day: { day: string; pass: number; fail: number; inconclusive: number }[];
  most_failing_test_cases: { test_case_id: string; name: string; failures: number; runs: number }[];
  queue?: QueueStats;
}

/** A Test Runner as devicelab's registry knows it (GET /api/runners). */
export interface Runner {
  id: string;
  host: string;
  version: string;
  executors: string[];
  /** online: heard from lately; silent: not (runners report only while they have a run). */
  state: 'online' | 'silent';
  busy: boolean;
  current_run_ids: string[];
  first_seen_at: string;
  last_seen_at: string;
  runs_done: number;
  failures: number;
  drained: boolean;
  drained_by: string;
  drained_at: string | null;
  drain_reason: string;
}

export interface RunnerRecentRun {
  id: string;
  status: RunStatus;
  verdict: Verdict | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  failure_reason: string;
}

export interface RunnerDetail extends Runner {
  recent_runs: RunnerRecentRun[];
}
