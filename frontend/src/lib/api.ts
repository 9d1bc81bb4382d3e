// The one way the UI talks to the backend: `send()` adds the session token, encodes JSON, and
// turns every failure into an ApiError whose messages can be shown next to the fields they
// concern. Everything else in this module is a thin, typed name for one endpoint.

import type {
  CurrentSession,
  Device,
  DeviceFilters,
  DeviceWrite,
  Environment,
  EnvironmentWrite,
  HealthCheck,
  HealthCheckWrite,
  Hold,
  HoldRequest,
  QueueItem,
  LoginResponse,
  ManualStatus,
  Page,
  PasswordReset,
  RunFilters,
  Runner,
  RunnerDetail,
  SessionInfo,
  StartRunRequest,
  Stats,
  StatusChange,
  TestCase,
  TestCaseWrite,
  TestRun,
  User,
} from './types';

export type FieldErrors = Record<string, string[]>;

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Problems per field, with nested fields flattened to dotted paths: `criteria.0.threshold`. */
  readonly fieldErrors: FieldErrors;
  /** For `device_unavailable`: device id → its status at the time of the request. */
  readonly unavailable: Record<string, string>;
  /** Seconds to wait before retrying, from a 429's Retry-After header. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    fieldErrors: FieldErrors = {},
    unavailable: Record<string, string> = {},
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fieldErrors = fieldErrors;
    this.unavailable = unavailable;
    this.retryAfter = retryAfter;
  }

  /** The first problem reported for `field` (or any field below it), if any. */
  forField(field: string): string | undefined {
    if (this.fieldErrors[field]) return this.fieldErrors[field][0];
    const nested = Object.keys(this.fieldErrors).find((key) => key.startsWith(field + '.'));
    return nested ? this.fieldErrors[nested][0] : undefined;
  }

  /** Field problems whose field is not in `shown`, to be listed with the form's general error. */
  otherFieldMessages(shown: string[]): string[] {
    return Object.entries(this.fieldErrors)
      .filter(([field]) => !shown.some((s) => field === s || field.startsWith(s + '.')))
      .map(([field, messages]) => `${humanField(field)}: ${messages.join(' ')}`);
  }
}

/** What to show for a failed call: the ApiError's message, or whatever else was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof ApiError ? error.message : String(error);
}

function humanField(field: string): string {
  return field.replace(/^_/, '').replace(/_/g, ' ').replace(/\.(\d+)\./g, ' #$1 ').replace(/\./g, ' ');
}

/** Turns the API's `errors` object (which nests for lists and objects) into dotted paths. */
export function flattenErrors(errors: unknown, prefix = ''): FieldErrors {
  const flat: FieldErrors = {};
  const put = (key: string, message: string) => {
    (flat[key || '_request'] ??= []).push(message);
  };
  const walk = (value: unknown, path: string) => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string') {
      put(path, value);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (typeof item === 'string') put(path, item);
        else walk(item, path ? `${path}.${index}` : String(index));
      });
    } else if (typeof value === 'object') {
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
        walk(inner, path ? `${path}.${key}` : key);
      }
    } else {
      put(path, String(value));
    }
  };
  walk(errors, prefix);
  return flat;
}

export interface ClientHooks {
  /** The current session token, or null when logged out. */
  token: () => string | null;
  /** The signed-in user's role, for "your role may not do this" messages. */
  role: () => string | null;
  /** Called when the server no longer accepts the token (401 on a call that sent one). */
  onUnauthorized: (error: ApiError) => void;
}

const hooks: ClientHooks = {
  token: () => null,
  role: () => null,
  onUnauthorized: () => {},
};

export function configureApi(overrides: Partial<ClientHooks>): void {
  Object.assign(hooks, overrides);
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export interface SendOptions {
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
  /** Do not treat a 401 as "session ended" (the login form's own wrong-password answer). */
  expectUnauthorized?: boolean;
}

export function authHeader(): Record<string, string> {
  const token = hooks.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// The last answers to GETs that came with an ETag (the lists of devices, runs, test cases and
// environments), by URL and token: asking again sends If-None-Match, and a 304 (no body, only
// the token check and one query on the server) is answered from here. The API marks its answers
// `no-store`, so the browser's own cache never does this. A few dozen lists at most.
const REVALIDATED_MAX = 40;
const revalidated = new Map<string, { etag: string; text: string }>();

/** Forget the kept answers (a test's fresh start). */
export function forgetRevalidations(): void {
  revalidated.clear();
}

function keep(key: string, etag: string | null, text: string): void {
  revalidated.delete(key);
  if (etag === null) return;
  revalidated.set(key, { etag, text });
  if (revalidated.size > REVALIDATED_MAX) revalidated.delete(revalidated.keys().next().value as string);
}

export async function send<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeader() };
  const init: RequestInit = { method, headers, signal: options.signal };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const url = path + queryString(options.query);
  const key = `${headers.Authorization ?? ''} ${url}`;
  const known = method === 'GET' ? revalidated.get(key) : undefined;
  if (known) headers['If-None-Match'] = known.etag;
  const response = await reach(url, init);
  if (response.status === 304 && known) {
    keep(key, known.etag, known.text); // the most recently used stays longest
    return (known.text ? JSON.parse(known.text) : undefined) as T;
  }
  if (response.ok) {
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (method === 'GET') keep(key, response.headers.get('ETag'), text);
    return (text ? JSON.parse(text) : undefined) as T;
  }
  revalidated.delete(key);
  const error = await errorFrom(response);
  if (response.status === 401 && !options.expectUnauthorized && headers.Authorization) {
    hooks.onUnauthorized(error);
  }
  throw error;
}

async function reach(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause;
    throw new ApiError(
      0,
      'network_error',
      'Cannot reach the devicelab server. Check your connection and try again.',
    );
  }
}

/** Fetches a file the API serves (CSV, JUnit XML) with the session token and hands it to the
 * browser as a download named `filename`; a plain link could not send the token. */
export async function download(path: string, filename: string, query?: Query): Promise<void> {
  const headers = authHeader();
  const response = await reach(path + queryString(query), { headers });
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && headers.Authorization) hooks.onUnauthorized(error);
    throw error;
  }
  const url = URL.createObjectURL(await response.blob());
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = filename;
  anchor.click();
  URL.revokeObjectURL(url);
}

async function errorFrom(response: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    const parsed = await response.json();
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  const status = response.status;
  const code = typeof body.code === 'string' ? body.code : `http_${status}`;
  const serverMessage = typeof body.message === 'string' ? body.message : '';
  const fieldErrors = flattenErrors(body.errors ?? {});
  const unavailable = (body.unavailable as Record<string, string> | undefined) ?? {};
  const retryHeader = response.headers.get('Retry-After');
  const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : null;
  return new ApiError(
    status,
    code,
    messageFor(status, serverMessage, retryAfter),
    fieldErrors,
    unavailable,
    retryAfter,
  );
}

function messageFor(status: number, serverMessage: string, retryAfter: number | null): string {
  if (status === 403) {
    const role = hooks.role();
    const who = role ? `Your role (${role})` : 'Your role';
    return `${who} may not do this.` + (serverMessage && !/forbidden/i.test(serverMessage) ? ` ${serverMessage}` : '');
  }
  if (status === 429) {
    const wait = retryAfter === null ? 'a little while' : `${retryAfter} second${retryAfter === 1 ? '' : 's'}`;
    return `Too many attempts. Try again in ${wait}.`;
  }
  if (status === 413) return 'That is more data than the server accepts in one request.';
  if (status >= 500) {
    return status === 503
      ? 'The server is not ready (its database may be unreachable). Try again shortly.'
      : 'The server failed to handle this request; it has been logged. Try again, and tell the lab admin if it keeps happening.';
  }
  if (serverMessage) return serverMessage.charAt(0).toUpperCase() + serverMessage.slice(1);
  return `The request failed (HTTP ${status}).`;
}

/** Every item of a cursor-paginated list (bounded, for pickers over a lab-sized list). */
export async function listAll<T>(path: string, query: Query = {}, maxPages = 25): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const result: Page<T> = await send<Page<T>>('GET', path, { query: { ...query, limit: 200, cursor } });
    items.push(...result.items);
    cursor = result.next_cursor;
    if (!cursor) break;
  }
  return items;
}

const id = encodeURIComponent;

export const auth = {
  login: (email: string, password: string) =>
    send<LoginResponse>('POST', '/auth/login', { body: { email, password }, expectUnauthorized: true }),
  logout: () => send<void>('POST', '/auth/logout'),
  session: (signal?: AbortSignal) => send<CurrentSession>('GET', '/auth/session', { signal }),
  sessions: () => listAll<SessionInfo>('/auth/sessions'),
  revokeSession: (sessionId: string) => send<void>('DELETE', `/auth/sessions/${id(sessionId)}`),
  endOtherSessions: () => send<{ sessions_ended: number }>('POST', '/auth/sessions/end-others'),
  changePassword: (current_password: string, new_password: string) =>
    send<void>('POST', '/auth/password', { body: { current_password, new_password } }),
  users: () => listAll<User>('/auth/users'),
  createUser: (user: { email: string; name: string; role: string; password: string }) =>
    send<User>('POST', '/auth/users', { body: user }),
  updateUser: (userId: string, changes: Partial<Pick<User, 'role' | 'name' | 'disabled'>>) =>
    send<User>('PATCH', `/auth/users/${id(userId)}`, { body: changes }),
  resetPassword: (userId: string) => send<PasswordReset>('POST', `/auth/users/${id(userId)}/reset-password`),
};

export interface DeviceQuery extends Query, DeviceFilters {
  cursor?: string | null;
  limit?: number;
}

export const devices = {
  list: (query: DeviceQuery = {}, signal?: AbortSignal) =>
    send<Page<Device>>('GET', '/api/devices', { query, signal }),
  all: (query: DeviceQuery = {}) => listAll<Device>('/api/devices', query),
  get: (deviceId: string) => send<Device>('GET', `/api/devices/${id(deviceId)}`),
  create: (device: DeviceWrite) => send<Device>('POST', '/api/devices', { body: device }),
  update: (deviceId: string, changes: Partial<DeviceWrite>) =>
    send<Device>('PATCH', `/api/devices/${id(deviceId)}`, { body: changes }),
  remove: (deviceId: string) => send<void>('DELETE', `/api/devices/${id(deviceId)}`),
  setStatus: (deviceId: string, status: ManualStatus, reason: string) =>
    send<Device>('POST', `/api/devices/${id(deviceId)}/status`, { body: { status, reason } }),
  history: (deviceId: string, limit = 100) =>
    send<StatusChange[]>('GET', `/api/devices/${id(deviceId)}/history`, { query: { limit } }),
  /** A bad device goes back into booking (its health is unknown until its next check). */
  clearHealth: (deviceId: string, reason: string) =>
    send<Device>('POST', `/api/devices/${id(deviceId)}/health/clear`, { body: { reason } }),
};

export const healthChecks = {
  list: () => send<HealthCheck[]>('GET', '/api/health-checks'),
  create: (check: HealthCheckWrite) => send<HealthCheck>('POST', '/api/health-checks', { body: check }),
  update: (checkId: string, changes: Partial<HealthCheckWrite>) =>
    send<HealthCheck>('PATCH', `/api/health-checks/${id(checkId)}`, { body: changes }),
  remove: (checkId: string) => send<void>('DELETE', `/api/health-checks/${id(checkId)}`),
};

export const testCases = {
  list: (query: Query = {}, signal?: AbortSignal) =>
    send<Page<TestCase>>('GET', '/api/test-cases', { query, signal }),
  all: (query: Query = {}) => listAll<TestCase>('/api/test-cases', query),
  get: (caseId: string) => send<TestCase>('GET', `/api/test-cases/${id(caseId)}`),
  create: (testCase: TestCaseWrite) => send<TestCase>('POST', '/api/test-cases', { body: testCase }),
  update: (caseId: string, changes: Partial<TestCaseWrite>) =>
    send<TestCase>('PATCH', `/api/test-cases/${id(caseId)}`, { body: changes }),
  remove: (caseId: string) => send<void>('DELETE', `/api/test-cases/${id(caseId)}`),
};

export const environments = {
  list: (query: Query = {}, signal?: AbortSignal) =>
    send<Page<Environment>>('GET', '/api/environments', { query, signal }),
  all: (query: Query = {}) => listAll<Environment>('/api/environments', query),
  get: (envId: string) => send<Environment>('GET', `/api/environments/${id(envId)}`),
  create: (environment: EnvironmentWrite) =>
    send<Environment>('POST', '/api/environments', { body: environment }),
  update: (envId: string, changes: Partial<EnvironmentWrite>) =>
    send<Environment>('PATCH', `/api/environments/${id(envId)}`, { body: changes }),
  remove: (envId: string) => send<void>('DELETE', `/api/environments/${id(envId)}`),
};

export interface RunQuery extends Query, RunFilters {
  cursor?: string | null;
  limit?: number;
}

export const runs = {
  list: (query: RunQuery = {}, signal?: AbortSignal) =>
    send<Page<TestRun>>('GET', '/api/test-runs', { query, signal }),
  get: (runId: string, signal?: AbortSignal) => send<TestRun>('GET', `/api/test-runs/${id(runId)}`, { signal }),
  start: (request: StartRunRequest) => send<TestRun>('POST', '/api/test-runs', { body: request }),
  /** Waiting runs and holds in the order they get their devices. */
  queue: (signal?: AbortSignal) => send<{ items: QueueItem[] }>('GET', '/api/queue', { signal }),
  cancel: (runId: string, reason: string) =>
    send<TestRun>('POST', `/api/test-runs/${id(runId)}/cancel`, { body: { reason } }),
  /** The run history with these filters as CSV (one row per run × device × criterion). */
  exportCsv: (filters: RunFilters) => download('/api/test-runs.csv', 'test-runs.csv', { ...filters }),
  junit: (runId: string) =>
    download(`/api/test-runs/${id(runId)}/junit.xml`, `run-${runId}.junit.xml`),
};

export interface HoldQuery extends Query {
  status?: string;
  holder?: string;
  device_id?: string;
  cursor?: string | null;
  limit?: number;
}

/** Holds (servers from the holds release on; older ones answer 404, see lib/features). */
export const holds = {
  list: (query: HoldQuery = {}, signal?: AbortSignal) => send<Page<Hold>>('GET', '/api/holds', { query, signal }),
  get: (holdId: string) => send<Hold>('GET', `/api/holds/${id(holdId)}`),
  create: (request: HoldRequest) => send<Hold>('POST', '/api/holds', { body: request }),
  /** Ends the hold: released if it was active, cancelled if it was still waiting. */
  end: (holdId: string) => send<Hold>('DELETE', `/api/holds/${id(holdId)}`),
  extend: (holdId: string, by_s: number) => send<Hold>('POST', `/api/holds/${id(holdId)}/extend`, { body: { by_s } }),
};

/** The runner registry (servers from the runners release on). */
export const runners = {
  list: (signal?: AbortSignal) => send<{ items: Runner[] }>('GET', '/api/runners', { signal }),
  get: (runnerId: string) => send<RunnerDetail>('GET', `/api/runners/${id(runnerId)}`),
  drain: (runnerId: string, reason = '') => send<Runner>('POST', `/api/runners/${id(runnerId)}/drain`, { body: { reason } }),
  undrain: (runnerId: string) => send<Runner>('DELETE', `/api/runners/${id(runnerId)}/drain`),
};

export const stats = {
  get: (signal?: AbortSignal) => send<Stats>('GET', '/api/stats', { signal }),
};
