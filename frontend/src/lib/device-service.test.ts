import { describe, expect, it } from 'vitest';
import { actionTitle, changedMessage, outOfServiceText, outOfServiceTitle, statusActions } from './device-service';
import { makeDevice } from './testing/fixtures';
import type { Device } from './types';

const device = makeDevice;

const statuses = (d: Device, admin = false) => statusActions(d, admin).map((a) => a.status);

describe('statusActions', () => {
  it('offers maintenance, offline and retirement for an available device, with reasons where the API wants them', () => {
    const actions = statusActions(device(), false);
    expect(actions.map((a) => [a.status, a.needsReason])).toEqual([
      ['maintenance', true],
      ['offline', false],
      ['retired', true],
    ]);
  });

  it('drains a device in a test instead of retiring it, and cancels a pending drain', () => {
    const busy = device({ status: 'in_test', run_id: 'r1' });
    expect(statuses(busy)).toEqual(['maintenance', 'offline']);
    expect(statusActions(busy, true)[0].label).toBe('Maintenance after this run');
    const draining = device({ status: 'in_test', run_id: 'r1', drain_pending: true, service_state: 'maintenance' });
    expect(statusActions(draining, true).map((a) => a.label)).toEqual(['Cancel drain', 'Offline after this run']);
    expect(actionTitle(draining, 'maintenance')).toContain('Drain');
  });

  it('brings a device in maintenance or offline back, and lets only an admin bring a retired one back', () => {
    expect(statuses(device({ status: 'maintenance', service_state: 'maintenance' }))[0]).toBe('available');
    expect(statuses(device({ status: 'offline', service_state: 'silent' }))[0]).toBe('available');
    const retired = device({ status: 'retired', service_state: 'retired' });
    expect(statuses(retired, false)).toEqual([]);
    expect(statuses(retired, true)).toEqual(['available', 'maintenance']);
  });
});

describe('wording', () => {
  it('says who took a device out of service and why, but not for silence', () => {
    const note = { by: 'alice@lab', reason: 'recalibrate', since: '2026-12-01T09:00:00+00:00' };
    expect(outOfServiceText(device({ status: 'maintenance', service_state: 'maintenance', out_of_service: note }))).toBe(
      'maintenance by alice@lab: recalibrate',
    );
    expect(outOfServiceText(device({ status: 'offline', service_state: 'offline', out_of_service: note }))).toBe(
      'offline by hand by alice@lab: recalibrate',
    );
    expect(outOfServiceText(device({ status: 'offline', service_state: 'silent', out_of_service: note }))).toBeNull();
    expect(outOfServiceText(device())).toBeNull();
  });

  it('heads the details with the state and whether it waits for a run', () => {
    expect(outOfServiceTitle(device({ status: 'in_test', drain_pending: true, service_state: 'maintenance' }))).toBe(
      'Maintenance after its run',
    );
    expect(outOfServiceTitle(device({ status: 'offline', service_state: 'offline' }))).toBe('Offline by hand');
    expect(outOfServiceTitle(device({ status: 'offline', service_state: 'silent' }))).toBe('Offline by silence');
  });

  it('tells what happens after the change', () => {
    expect(changedMessage(device({ status: 'in_test', drain_pending: true }))).toContain('maintenance once its run ends');
    expect(changedMessage(device({ status: 'maintenance' }))).toBe('meter-01 is in maintenance.');
    expect(changedMessage(device())).toBe('meter-01 is available.');
  });
});

describe('a held device', () => {
  const held = device({ status: 'held', hold: { id: 'h1', holder: 'alice', until: null, reason: '' } });

  it('is drained like a device in a test: maintenance or offline after the hold', () => {
    expect(statusActions(held, true).map((a) => a.label)).toEqual(['Maintenance after this hold', 'Offline after this hold']);
    expect(actionTitle(held, 'maintenance')).toBe('Drain meter-01: maintenance after its hold');
    expect(changedMessage({ ...held, drain_pending: true })).toBe('meter-01 goes to maintenance once its hold ends.');
  });
});
