import { describe, expect, it } from 'vitest';
import { deviceHoldActions, heldMessage, holdState, holdText, mayManageHold } from './holds';
import { makeDevice } from './testing/fixtures';
import type { Hold } from './types';

const device = makeDevice;

const held = device({ status: 'held', hold: { id: 'h1', holder: 'alice', until: '2026-12-01T12:00:00Z', reason: 're-flash' } });

describe('holds', () => {
  it('says who holds a device, until when and why', () => {
    expect(holdText(held)).toMatch(/^held by alice until .+: re-flash$/);
    expect(holdText(device())).toBeNull();
  });

  it('lets the holder or an admin release and extend; others may queue a hold of their own', () => {
    expect(deviceHoldActions(held, 'alice', false, true)).toEqual(['release', 'extend']);
    expect(deviceHoldActions(held, 'bob', true, true)).toEqual(['release', 'extend']);
    expect(deviceHoldActions(held, 'bob', false, true)).toEqual(['hold']);
    expect(deviceHoldActions(held, 'carol', false, false)).toEqual([]);
    expect(deviceHoldActions(device({ status: 'in_test' }), 'bob', false, true)).toEqual(['hold']);
    expect(deviceHoldActions(device({ status: 'retired' }), 'bob', true, true)).toEqual([]);
    expect(mayManageHold('alice', null, false)).toBe(false);
  });

  it('words a hold by its state', () => {
    const hold = { status: 'waiting', position: 3, devices: [] } as unknown as Hold;
    expect(holdState(hold)).toBe('waiting, position 3');
    expect(heldMessage(hold)).toContain('position 3');
    expect(holdState({ ...hold, status: 'ended', end_reason: 'released' })).toBe('ended (released)');
    expect(heldMessage({ ...hold, status: 'active', expires_at: '2026-12-01T12:00:00Z', devices: [{ id: 'd1', name: 'meter-01', model: '', role: null }] })).toMatch(/^Held meter-01 until/);
  });
});
