import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  configureApi,
  errorMessage,
  flattenErrors,
  forgetRevalidations,
  listAll,
  queryString,
  runs,
  send,
} from './api';

function reply(status: number, body?: unknown, headers: Record<string, string> = {}): Response {
  const text = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
  return new Response(text, { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

/** The ApiError a call fails with (the test fails if it succeeds). */
async function failure(call: Promise<unknown>): Promise<ApiError> {
  const outcome = await call.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(outcome instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(outcome)}`);
  return outcome;
}

let fetchMock: ReturnType<typeof vi.fn>;
let token: string | null;
let expired: ApiError[];

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
  token = 'tok-123';
  expired = [];
  configureApi({ token: () => token, role: () => 'viewer', onUnauthorized: (e) => expired.push(e) });
  forgetRevalidations();
});

afterEach(() => vi.unstubAllGlobals());

describe('send with ETags', () => {
  const page = { items: [{ id: 'd1', name: 'meter' }], next_cursor: null };

  it('asks again with If-None-Match and answers a 304 with the kept body, a fresh copy each time', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, page, { ETag: '"v1"' }));
    fetchMock.mockResolvedValueOnce(new Response(null, { status: 304, headers: { ETag: '"v1"' } }));
    fetchMock.mockResolvedValueOnce(new Response(null, { status: 304, headers: { ETag: '"v1"' } }));
    const first = await send<typeof page>('GET', '/api/devices', { query: { limit: 50 } });
    expect(fetchMock.mock.calls[0][1].headers['If-None-Match']).toBeUndefined();
    first.items[0].name = 'changed by the caller';
    const second = await send<typeof page>('GET', '/api/devices', { query: { limit: 50 } });
    expect(fetchMock.mock.calls[1][1].headers['If-None-Match']).toBe('"v1"');
    expect(second).toEqual(page);
    expect(await send('GET', '/api/devices', { query: { limit: 50 } })).toEqual(page);
  });

  it('keeps the newer answer when the list changed', async () => {
    const newer = { items: [], next_cursor: null };
    fetchMock.mockResolvedValueOnce(reply(200, page, { ETag: '"v1"' }));
    fetchMock.mockResolvedValueOnce(reply(200, newer, { ETag: '"v2"' }));
    fetchMock.mockResolvedValueOnce(new Response(null, { status: 304 }));
    await send('GET', '/api/devices');
    expect(await send('GET', '/api/devices')).toEqual(newer);
    expect(await send('GET', '/api/devices')).toEqual(newer);
    expect(fetchMock.mock.calls[2][1].headers['If-None-Match']).toBe('"v2"');
  });

  it('never sends a tag kept for another token, another URL, or after a failure', async () => {
    fetchMock.mockImplementation(async () => reply(200, page, { ETag: '"v1"' }));
    await send('GET', '/api/devices');
    await send('GET', '/api/devices', { query: { status: 'available' } });
    expect(fetchMock.mock.calls[1][1].headers['If-None-Match']).toBeUndefined();
    token = 'another-users-token';
    await send('GET', '/api/devices');
    expect(fetchMock.mock.calls[2][1].headers['If-None-Match']).toBeUndefined();
    token = 'tok-123';
    fetchMock.mockResolvedValueOnce(reply(503, { code: 'unavailable', message: 'database down' }));
    await failure(send('GET', '/api/devices'));
    expect(fetchMock.mock.calls[3][1].headers['If-None-Match']).toBe('"v1"');
    await send('GET', '/api/devices');
    expect(fetchMock.mock.calls[4][1].headers['If-None-Match']).toBeUndefined();
  });

  it('keeps nothing for writes or answers without a tag', async () => {
    fetchMock.mockImplementation(async () => reply(200, page));
    await send('GET', '/api/stats');
    await send('GET', '/api/stats');
    expect(fetchMock.mock.calls[1][1].headers['If-None-Match']).toBeUndefined();
    fetchMock.mockImplementation(async () => reply(201, page, { ETag: '"w"' }));
    await send('POST', '/api/devices', { body: {} });
    fetchMock.mockImplementation(async () => reply(200, page));
    await send('GET', '/api/devices');
    expect(fetchMock.mock.calls[3][1].headers['If-None-Match']).toBeUndefined();
  });
});

describe('send', () => {
  it('sends the bearer token and a JSON body, and returns the JSON answer', async () => {
    fetchMock.mockResolvedValue(reply(201, { id: 'd1' }));
    const answer = await send<{ id: string }>('POST', '/api/devices', { body: { name: 'meter' } });
    expect(answer).toEqual({ id: 'd1' });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/api/devices');
    expect(init.method).toBe('POST');
    expect(init.headers.Authorization).toBe('Bearer tok-123');
    expect(init.headers['Content-Type']).toBe('application/json');
    expect(JSON.parse(init.body)).toEqual({ name: 'meter' });
  });

  it('sends no Authorization header when logged out', async () => {
    token = null;
    fetchMock.mockResolvedValue(reply(200, []));
    await send('GET', '/api/devices');
    expect(fetchMock.mock.calls[0][1].headers.Authorization).toBeUndefined();
  });

  it('adds the query without empty values', async () => {
    fetchMock.mockResolvedValue(reply(200, { items: [], next_cursor: null }));
    await send('GET', '/api/test-runs', { query: { status: 'running', verdict: '', cursor: null, limit: 5 } });
    expect(fetchMock.mock.calls[0][0]).toBe('/api/test-runs?status=running&limit=5');
  });

  it('answers undefined for 204 No Content', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 204 }));
    expect(await send('DELETE', '/api/devices/d1')).toBeUndefined();
  });

  it('turns a validation error into messages per field, nested fields as dotted paths', async () => {
    fetchMock.mockResolvedValue(
      reply(422, {
        code: 'validation_error',
        message: 'name: Length must be between 1 and 200.; criteria: invalid',
        errors: {
          name: ['Length must be between 1 and 200.'],
          criteria: { '0': { threshold: ['Not a valid number.'] } },
        },
      }),
    );
    const error = await failure(send('POST', '/api/test-cases', { body: {} }));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.code).toBe('validation_error');
    expect(error.fieldErrors).toEqual({
      name: ['Length must be between 1 and 200.'],
      'criteria.0.threshold': ['Not a valid number.'],
    });
    expect(error.forField('criteria')).toBe('Not a valid number.');
    expect(error.otherFieldMessages(['name'])).toEqual(['criteria #0 threshold: Not a valid number.']);
  });

  it('keeps the unavailable devices of a 409', async () => {
    fetchMock.mockResolvedValue(
      reply(409, {
        code: 'device_unavailable',
        message: 'devices not available: d1 (in_test)',
        errors: { device_ids: ['d1 is in_test'] },
        unavailable: { d1: 'in_test' },
      }),
    );
    const error = await failure(send('POST', '/api/test-runs', { body: {} }));
    expect(error.code).toBe('device_unavailable');
    expect(error.unavailable).toEqual({ d1: 'in_test' });
    expect(error.message).toBe('Devices not available: d1 (in_test)');
  });

  it('reports a 401 on a call with a token as the end of the session', async () => {
    fetchMock.mockResolvedValue(reply(401, { code: 'unauthenticated', message: 'token expired', errors: {} }));
    await expect(send('GET', '/api/devices')).rejects.toMatchObject({ status: 401 });
    expect(expired).toHaveLength(1);
  });

  it('does not end the session for the login form’s own 401', async () => {
    fetchMock.mockResolvedValue(reply(401, { code: 'invalid_credentials', message: 'wrong', errors: {} }));
    await expect(send('POST', '/auth/login', { body: {}, expectUnauthorized: true })).rejects.toMatchObject({ status: 401 });
    expect(expired).toHaveLength(0);
  });

  it('says which role may not do a forbidden thing', async () => {
    fetchMock.mockResolvedValue(reply(403, { code: 'forbidden', message: 'forbidden', errors: {} }));
    const error = await failure(send('POST', '/api/test-cases'));
    expect(error.message).toBe('Your role (viewer) may not do this.');
  });

  it('tells how long to wait after a 429', async () => {
    fetchMock.mockResolvedValue(reply(429, { code: 'too_many_requests', message: 'slow down', errors: {} }, { 'Retry-After': '30' }));
    const error = await failure(send('POST', '/auth/login', { expectUnauthorized: true }));
    expect(error.retryAfter).toBe(30);
    expect(error.message).toBe('Too many attempts. Try again in 30 seconds.');
  });

  it('explains a server failure without leaking its body', async () => {
    fetchMock.mockResolvedValue(reply(500, '<html>Traceback</html>', { 'Content-Type': 'text/html' }));
    const error = await failure(send('GET', '/api/devices'));
    expect(error.status).toBe(500);
    expect(error.message).toMatch(/server failed/);
  });

  it('reports an unreachable server as a network error', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    const error = await failure(send('GET', '/api/devices'));
    expect(error.status).toBe(0);
    expect(error.code).toBe('network_error');
  });

  it('lets an aborted request stay an abort', async () => {
    fetchMock.mockRejectedValue(new DOMException('aborted', 'AbortError'));
    await expect(send('GET', '/api/devices')).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('flattenErrors', () => {
  it('flattens objects and lists, keeping messages of lists of strings together', () => {
    expect(flattenErrors({ variables: { foo: { value: ['too long'] } }, _schema: ['bad'], tags: { 2: ['empty'] } })).toEqual({
      'variables.foo.value': ['too long'],
      _schema: ['bad'],
      'tags.2': ['empty'],
    });
  });

  it('files a bare message under _request', () => {
    expect(flattenErrors('nope')).toEqual({ _request: ['nope'] });
  });
});

describe('errorMessage', () => {
  it('shows an API failure as its message and anything else as text', () => {
    expect(errorMessage(new ApiError(409, 'conflict', 'The device is in a test.'))).toBe('The device is in a test.');
    expect(errorMessage(new TypeError('x is undefined'))).toBe('TypeError: x is undefined');
    expect(errorMessage('plain')).toBe('plain');
  });
});

describe('listAll', () => {
  it('follows next_cursor until the end', async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { items: [1, 2], next_cursor: 'c2' }))
      .mockResolvedValueOnce(reply(200, { items: [3], next_cursor: null }));
    expect(await listAll<number>('/api/devices', { status: 'available' })).toEqual([1, 2, 3]);
    expect(fetchMock.mock.calls[1][0]).toBe('/api/devices?status=available&limit=200&cursor=c2');
  });
});

describe('queryString', () => {
  it('is empty without values', () => {
    expect(queryString({ a: '', b: undefined })).toBe('');
    expect(queryString(undefined)).toBe('');
  });
});

describe('download', () => {
  it('fetches the file with the token and the filters, and saves it under its name', async () => {
    fetchMock.mockResolvedValue(new Response('run_id\nr1\n', { status: 200, headers: { 'Content-Type': 'text/csv' } }));
    const clicked: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    });
    await runs.exportCsv({ verdict: 'fail', status: '' });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/api/test-runs.csv?verdict=fail');
    expect(init.headers.Authorization).toBe('Bearer tok-123');
    expect(clicked).toEqual(['test-runs.csv']);
    click.mockRestore();
  });

  it('turns a refusal into an ApiError and saves nothing', async () => {
    fetchMock.mockResolvedValue(reply(404, { code: 'not_found', message: 'test run not found: r9' }));
    const error = await failure(runs.junit('r9'));
    expect(error.status).toBe(404);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/test-runs/r9/junit.xml');
  });
});
