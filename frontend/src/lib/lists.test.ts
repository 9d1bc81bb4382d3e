import { describe, expect, it } from 'vitest';
import { deviceMatches, removeById, replaceById, runMatches, upsertById } from './lists';
import type { Device, TestRun } from './types';

const run = {
  id: 'r1',
  status: 'running',
  verdict: null,
  created_at: '2026-05-01T10:00:00+00:00',
  environment: { id: 'e1', name: 'Bench', description: '', variables: {} },
  test_cases: [{ id: 'tc1' }],
  devices: [{ id: 'd1', firmware_version: '1.0.7' }],
} as unknown as TestRun;

const device = {
  id: 'd1',
  name: 'meter-e350-01',
  model: 'Landis+Gyr E350',
  serial: 'LG-350-0001',
  location: 'bench A',
  firmware_version: '4.2.1',
  labels: { type: 'meter', phase: 'single' },
  status: 'available',
} as unknown as Device;

describe('runMatches', () => {
  it('applies every filter the run list has', () => {
    expect(runMatches(run, {})).toBe(true);
    expect(runMatches(run, { status: 'running', device_id: 'd1', environment_id: 'e1', test_case_id: 'tc1', firmware: '1.0.7' })).toBe(true);
    expect(runMatches(run, { status: 'queued' })).toBe(false);
    expect(runMatches(run, { verdict: 'pass' })).toBe(false);
    expect(runMatches(run, { device_id: 'd2' })).toBe(false);
    expect(runMatches(run, { from: '2026-05-02T00:00:00Z' })).toBe(false);
    expect(runMatches(run, { to: '2026-04-30T00:00:00Z' })).toBe(false);
  });
});

describe('deviceMatches', () => {
  it('follows the device list’s status, text and label filters', () => {
    expect(deviceMatches(device, { q: 'e350', status: 'available' })).toBe(true);
    expect(deviceMatches(device, { q: 'bench a' })).toBe(true);
    expect(deviceMatches(device, { q: 'kaifa' })).toBe(false);
    expect(deviceMatches(device, { label: 'type' })).toBe(true);
    expect(deviceMatches(device, { label: 'type:meter' })).toBe(true);
    expect(deviceMatches(device, { label: 'type:dongle' })).toBe(false);
    expect(deviceMatches(device, { status: 'offline' })).toBe(false);
  });

  it('leaves retired devices out unless asked for, like the API', () => {
    const retired = { ...device, status: 'retired' } as Device;
    expect(deviceMatches(retired, {})).toBe(false);
    expect(deviceMatches(retired, { status: 'retired' })).toBe(true);
    expect(deviceMatches(retired, { include_retired: true })).toBe(true);
  });
});

describe('list updates', () => {
  const items = [{ id: 'a', v: 1 }, { id: 'b', v: 1 }];
  it('replaces in place, adds new ones in front or at the end, and removes', () => {
    expect(upsertById(items, { id: 'b', v: 2 })).toEqual([{ id: 'a', v: 1 }, { id: 'b', v: 2 }]);
    expect(upsertById(items, { id: 'c', v: 1 })[0].id).toBe('c');
    expect(upsertById(items, { id: 'c', v: 1 }, true)[2].id).toBe('c');
    expect(replaceById(items, { id: 'z', v: 9 })).toBe(items);
    expect(removeById(items, 'a')).toEqual([{ id: 'b', v: 1 }]);
  });
});
