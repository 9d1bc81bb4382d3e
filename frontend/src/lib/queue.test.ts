import { describe, expect, it } from 'vitest';
import {
  countMatches,
  describeRequest,
  estimateText,
  mayCancel,
  prioritiesFor,
  queueRows,
  startOutlook,
  waitingLines,
  requestFromRow,
  labModels,
  queueStatsFrom,
} from './queue';
import { makeDevice } from './testing/fixtures';
import type { Device, DeviceRequest, QueueItem, TestRun } from './types';

const device = (id: string, changes: Partial<Device> = {}) => makeDevice({ id, name: `dev-${id}`, model: 'EM-340', ...changes });

const request = (changes: Partial<DeviceRequest> = {}): DeviceRequest => ({ role: null, model: null, labels: {}, count: 1, ...changes });

describe('countMatches', () => {
  const lab = [
    device('a'),
    device('b', { status: 'in_test' }),
    device('c', { labels: { type: 'dongle' } }),
    device('d', { model: 'P1', labels: { type: 'dongle' } }),
    device('e', { status: 'retired' }),
  ];

  it('counts devices of the model with every label asked for, and the free ones among them', () => {
    expect(countMatches(lab, request({ model: 'EM-340' }))).toEqual({ matching: 3, free: 2 });
    expect(countMatches(lab, request({ labels: { type: 'dongle' } }))).toEqual({ matching: 2, free: 2 });
    expect(countMatches(lab, request({ model: 'P1', labels: { type: 'dongle' } }))).toEqual({ matching: 1, free: 1 });
    expect(countMatches(lab, request({ labels: { type: 'meter' } }))).toEqual({ matching: 0, free: 0 });
  });

  it('leaves out retired devices and the devices named in the run', () => {
    expect(countMatches(lab, request(), ['a'])).toEqual({ matching: 3, free: 2 });
  });
});

describe('startOutlook', () => {
  it('starts now when the named devices are free and every request can be filled', () => {
    const lab = [device('a'), device('b'), device('c', { model: 'P1' })];
    expect(startOutlook(lab, ['a'], [request({ model: 'EM-340' })])).toEqual({ kind: 'now' });
  });

  it('waits, and says why, for a busy or held named device', () => {
    const lab = [device('a', { status: 'in_test' }), device('b', { status: 'held', hold: { id: 'h', holder: 'bob', until: null, reason: '' } })];
    const outlook = startOutlook(lab, ['a', 'b'], []);
    expect(outlook).toEqual({ kind: 'waits', reasons: ['dev-a is in a test', 'dev-b is held by bob'] });
  });

  it('waits when a request matches enough devices but not enough are free', () => {
    const lab = [device('a'), device('b', { status: 'maintenance' })];
    const outlook = startOutlook(lab, [], [request({ count: 2 })]);
    expect(outlook.kind).toBe('waits');
    if (outlook.kind === 'waits') expect(outlook.reasons[0]).toContain('1 of 2 free now');
  });

  it('is refused when no set of lab devices could ever satisfy a request (retired ones do not count)', () => {
    const lab = [device('a'), device('b', { status: 'retired' })];
    const outlook = startOutlook(lab, [], [request({ count: 2, role: 'meter' })]);
    expect(outlook.kind).toBe('impossible');
    if (outlook.kind === 'impossible') expect(outlook.problems[0]).toMatch(/#1 \(meter: 2 × any device\) needs 2; only 1 device/);
  });

  it('sees that two requests cannot share one device, even when each alone could be filled', () => {
    const lab = [device('a', { labels: { type: 'dongle' } })];
    expect(startOutlook(lab, [], [request({ labels: { type: 'dongle' } }), request()]).kind).toBe('impossible');
  });

  it('does not let an early broad request take the device a later narrow one needs', () => {
    // a fits both, b fits only the first: a greedy pick of a for #1 would leave #2 unfilled
    const lab = [device('a', { labels: { type: 'dongle' } }), device('b')];
    expect(startOutlook(lab, [], [request(), request({ labels: { type: 'dongle' } })])).toEqual({ kind: 'now' });
  });

  it('does not fill a request with a named device: it has its own place', () => {
    const lab = [device('a'), device('b', { status: 'in_test' })];
    const outlook = startOutlook(lab, ['a'], [request()]);
    expect(outlook.kind).toBe('waits');
  });

  it('has nothing to say before any device is chosen', () => {
    expect(startOutlook([device('a')], [], [])).toEqual({ kind: 'empty' });
  });
});

describe('estimateText', () => {
  const now = Date.parse('2026-12-01T10:00:00Z');
  it('reads relative and approximate, and says unknown when the server cannot tell', () => {
    expect(estimateText('2026-12-01T10:12:10Z', now)).toBe('in ~12 min');
    expect(estimateText('2026-12-01T12:10:00Z', now)).toBe('in ~2 h 10 min');
    expect(estimateText('2026-12-01T11:00:00Z', now)).toBe('in ~1 h');
    expect(estimateText('2026-12-03T10:00:00Z', now)).toBe('in ~2 days');
    expect(estimateText('2026-12-01T09:59:00Z', now)).toBe('any moment now');
    expect(estimateText(null, now)).toBe('unknown');
    expect(estimateText('garbage', now)).toBe('unknown');
  });
});

describe('describeRequest', () => {
  it('words a request as the server does', () => {
    expect(describeRequest(request({ role: 'meter', model: 'EM-340', labels: { type: 'x', a: 'b' }, count: 2 }))).toBe('meter: 2 × model EM-340, a=b, type=x');
    expect(describeRequest(request())).toBe('1 × any device');
  });

});

describe('queue rows', () => {
  const run = { id: 'r1', started_by: 'alice', priority: 'high', created_at: '2026-12-01T09:00:00Z', test_cases: [{ name: 'A' }, { name: 'B' }] } as unknown as TestRun;

  it('lists runs and holds by position, and takes items without a kind (older servers) as runs', () => {
    const items: QueueItem[] = [
      { position: 2, kind: 'hold', run: null, hold: { id: 'h1', holder: 'bob', reason: 'flash', priority: 'normal', created_at: '2026-12-01T09:30:00Z' } as never, waiting_for: null, estimated_start_at: null },
      { position: 1, run, waiting_for: { devices: { d1: 'busy' }, requests: [] }, estimated_start_at: '2026-12-01T10:00:00Z' },
    ];
    const rows = queueRows(items);
    expect(rows.map((r) => [r.kind, r.id, r.who, r.what, r.priority])).toEqual([
      ['run', 'r1', 'alice', 'A, B', 'high'],
      ['hold', 'h1', 'bob', 'flash', 'normal'],
    ]);
    expect(rows[0].href).toBe('/runs/r1');
    expect(rows[0].estimatedStartAt).toBe('2026-12-01T10:00:00Z');
  });

  it('says what an item waits for with device names', () => {
    const lines = waitingLines(
      { devices: { d1: 'busy' }, requests: [{ request: 1, description: '2 × model EM-340', missing: 1, free_for_it: 0, kept_for_earlier: 1 }] },
      (id) => (id === 'd1' ? 'meter-01' : undefined),
    );
    expect(lines).toEqual(['meter-01: busy', '2 × model EM-340: 1 missing, 1 kept for earlier items']);
  });

  it('lets the owner or an admin cancel, nobody else', () => {
    expect(mayCancel('alice', 'alice', false)).toBe(true);
    expect(mayCancel('alice', 'bob', false)).toBe(false);
    expect(mayCancel('alice', 'bob', true)).toBe(true);
    expect(mayCancel('alice', null, false)).toBe(false);
  });

  it('offers high priority to engineers and admins only', () => {
    expect(prioritiesFor('engineer')).toContain('high');
    expect(prioritiesFor('admin')).toContain('high');
    expect(prioritiesFor('viewer')).toEqual(['low', 'normal']);
  });
});

describe('request rows', () => {
  it('turn into requests, with problems per field', () => {
    expect(requestFromRow({ role: ' meter ', model: 'EM-340', labels: 'type=x', count: 2 })).toEqual({
      request: { role: 'meter', model: 'EM-340', labels: { type: 'x' }, count: 2 },
      errors: {},
    });
    const bad = requestFromRow({ role: '', model: '', labels: '=x', count: 0 });
    expect(Object.keys(bad.errors).sort()).toEqual(['count', 'labels']);
    expect(bad.request.role).toBeNull();
  });

  it('offer the models of the lab once each', () => {
    expect(labModels([device('a'), device('b'), device('c', { model: 'P1' }), device('d', { model: '' })])).toEqual(['EM-340', 'P1']);
  });
});

describe('queueStatsFrom', () => {
  it('counts the rows and measures the wait of the oldest', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    const rows = [{ since: '2026-12-01T09:50:00Z' }, { since: '2026-12-01T09:30:00Z' }] as never;
    expect(queueStatsFrom(rows, now)).toEqual({ length: 2, longest_wait_s: 1800, oldest_waiting_since: '2026-12-01T09:30:00Z' });
    expect(queueStatsFrom([], now)).toEqual({ length: 0, longest_wait_s: null, oldest_waiting_since: null });
  });
});
