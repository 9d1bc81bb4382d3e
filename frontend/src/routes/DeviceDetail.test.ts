import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import DeviceDetail from './DeviceDetail.svelte';
import { features } from '../lib/features.svelte';
import { jsonResponse, makeDevice, notFound, signedInWith, signOutAfterTest } from '../lib/testing/fixtures';
import type { Device } from '../lib/types';

const user = { email: 'ada@lab.test', role: 'engineer' as const };
const base = makeDevice({ model: 'EM-340' });
const held = { ...base, status: 'held' as const, hold: { id: 'h1', holder: 'ada@lab.test', until: '2026-12-01T12:00:00+00:00', reason: 're-flash by hand' } };
const free = { ...base, status: 'available' as const, hold: null };

let device: Device;
let holdsPresent: boolean;
let fetchMock: ReturnType<typeof signedInWith>;
const page = (items: unknown[] = []) => jsonResponse({ items, next_cursor: null });

beforeEach(() => {
  features.forget();
  fetchMock = signedInWith(user, (url, init) => {
    if (url === '/api/devices/d1') return jsonResponse(device);
    if (url.startsWith('/api/devices/d1/history')) return jsonResponse([]);
    if (url.startsWith('/api/test-runs?')) return page();
    if (url.startsWith('/api/holds?')) return holdsPresent ? page() : notFound(url);
    if (url === '/api/holds/h1' && init?.method === 'DELETE') {
      device = free;
      return jsonResponse({ id: 'h1', status: 'ended', end_reason: 'released' });
    }
    return notFound(url);
  });
});
afterEach(signOutAfterTest);

describe('a held device', () => {
  it('shows who holds it, until when and why, and its holder releases it', async () => {
    device = held;
    holdsPresent = true;
    render(DeviceDetail, { id: 'd1' });
    const note = await screen.findByTestId('device-hold');
    expect(note.querySelector('[data-field="holder"]')!.textContent).toBe('ada@lab.test');
    expect(note.querySelector('[data-field="reason"]')!.textContent).toBe('re-flash by hand');
    expect(note.querySelector('[data-field="until"]')!.textContent).not.toBe('');

    await fireEvent.click(await screen.findByRole('button', { name: 'Release' }));
    await vi.waitFor(() => expect(screen.queryByTestId('device-hold')).toBeNull());
    expect(fetchMock.mock.calls.some(([url, init]) => url === '/api/holds/h1' && init?.method === 'DELETE')).toBe(true);
    expect(await screen.findByRole('button', { name: 'Hold' })).toBeTruthy();
  });

  it('offers no hold actions on a server without holds (GET /api/holds answers 404)', async () => {
    device = free;
    holdsPresent = false;
    render(DeviceDetail, { id: 'd1' });
    await screen.findByRole('button', { name: 'Set maintenance' });
    await vi.waitFor(() => expect(features.holds).toBe('absent'));
    expect(screen.queryByRole('button', { name: 'Hold' })).toBeNull();
  });
});

describe('a bad device', () => {
  const bad = {
    ...free,
    health: 'bad' as const,
    health_note: { run_id: 'r9', reason: 'health check run r9 ended fail', by: 'health-check', since: '2026-12-01T09:00:00+00:00' },
  };

  it('shows its health beside its status and an engineer clears it', async () => {
    device = bad;
    holdsPresent = false;
    fetchMock = signedInWith(user, (url, init) => {
      if (url === '/api/devices/d1/health/clear' && init?.method === 'POST') {
        device = { ...bad, health: 'unknown', health_note: { run_id: null, reason: 'cleared by ada', by: 'ada@lab.test', since: '2026-12-01T10:00:00+00:00' } };
        return jsonResponse(device);
      }
      if (url === '/api/devices/d1') return jsonResponse(device);
      if (url.startsWith('/api/devices/d1/history')) return jsonResponse([]);
      if (url.startsWith('/api/test-runs?')) return page();
      return notFound(url);
    });
    render(DeviceDetail, { id: 'd1' });
    const health = await screen.findByTestId('device-health');
    expect(health.querySelector('[data-health="bad"]')).toBeTruthy();
    expect(health.querySelector('[data-field="reason"]')!.textContent).toBe('health check run r9 ended fail');
    expect(health.querySelector('a')!.getAttribute('href')).toBe('/runs/r9');

    await fireEvent.click(await screen.findByRole('button', { name: 'Clear health' }));
    const dialog = await screen.findByRole('dialog');
    await fireEvent.click(Array.from(dialog.querySelectorAll('button')).find((b) => b.textContent?.includes('Clear health'))!);
    await vi.waitFor(() => expect(screen.getByTestId('device-health').querySelector('[data-health="unknown"]')).toBeTruthy());
    expect(fetchMock.mock.calls.some(([url, init]) => url === '/api/devices/d1/health/clear' && init?.method === 'POST')).toBe(true);
    expect(screen.queryByRole('button', { name: 'Clear health' })).toBeNull();
  });

  it('offers no clearing to a viewer', async () => {
    device = bad;
    holdsPresent = false;
    fetchMock = signedInWith({ email: 'vic@lab.test', role: 'viewer' }, (url) => {
      if (url === '/api/devices/d1') return jsonResponse(device);
      if (url.startsWith('/api/devices/d1/history')) return jsonResponse([]);
      if (url.startsWith('/api/test-runs?')) return page();
      return notFound(url);
    });
    render(DeviceDetail, { id: 'd1' });
    await screen.findByTestId('device-health');
    expect(screen.queryByRole('button', { name: 'Clear health' })).toBeNull();
  });
});

describe('the runs on the device', () => {
  it("show a marginal result as marginal, not as a pass", async () => {
    device = free;
    holdsPresent = false;
    const run = {
      id: 'r1',
      created_at: '2026-12-01T10:00:00+00:00',
      test_cases: [{ id: 'c1', name: 'Accuracy' }],
      environment: { id: 'e1', name: 'Bench A' },
      status: 'completed',
      verdict: 'marginal',
      results: [
        { device_id: 'd1', test_case_id: 'c1', verdict: 'pass', measurements: [] },
        { device_id: 'd1', test_case_id: 'c2', verdict: 'marginal', measurements: [] },
      ],
    };
    fetchMock = signedInWith(user, (url) => {
      if (url === '/api/devices/d1') return jsonResponse(device);
      if (url.startsWith('/api/devices/d1/history')) return jsonResponse([]);
      if (url.startsWith('/api/test-runs?')) return page([run]);
      return notFound(url);
    });
    render(DeviceDetail, { id: 'd1' });
    const runs = await screen.findByTestId('device-runs');
    await vi.waitFor(() => expect(runs.querySelector('[data-status="marginal"]')).toBeTruthy());
    expect(runs.querySelector('[data-status="pass"]')).toBeNull();
  });
});
