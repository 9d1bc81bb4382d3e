// Holds (devices kept for manual work): how they read and who may do what with them.

import { formatDateTime, formatDuration } from './format';
import type { Device, Hold } from './types';

/** Durations offered for a new hold; the server allows up to DEVICELAB_MAX_HOLD_S (8 h by default). */
export const HOLD_DURATIONS_S = [30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600];
/** How much longer an active hold may be made at a time. */
export const EXTEND_BY_S = [15 * 60, 30 * 60, 3600, 2 * 3600];

export function durationOptions(seconds: number[]): { value: number; label: string }[] {
  return seconds.map((value) => ({ value, label: formatDuration(value) }));
}

/** "held by alice@lab until 3 Dec 14:30: re-flash by hand" for lists and details. */
export function holdText(device: Device): string | null {
  const hold = device.hold;
  if (!hold) return null;
  const until = hold.until ? ` until ${formatDateTime(hold.until)}` : '';
  return `held by ${hold.holder}${until}${hold.reason ? `: ${hold.reason}` : ''}`;
}

/** Only the holder or an admin ends or extends a hold early. */
export function mayManageHold(holder: string, me: string | null, admin: boolean): boolean {
  return admin || (me !== null && holder === me);
}

export type DeviceHoldAction = 'hold' | 'release' | 'extend';

/** The hold buttons on a device: hold it (it waits when busy), or release / extend its hold. */
export function deviceHoldActions(device: Device, me: string | null, admin: boolean, canHold: boolean): DeviceHoldAction[] {
  if (device.status === 'retired') return [];
  if (device.status === 'held' && device.hold && mayManageHold(device.hold.holder, me, admin)) return ['release', 'extend'];
  return canHold ? ['hold'] : [];
}

/** What a hold is up to, in a word or a few. */
export function holdState(hold: Hold): string {
  if (hold.status === 'waiting') return hold.position ? `waiting, position ${hold.position}` : 'waiting';
  if (hold.status === 'active') return hold.expires_at ? `active until ${formatDateTime(hold.expires_at)}` : 'active';
  return hold.end_reason ? `ended (${hold.end_reason})` : 'ended';
}

/** The toast after creating a hold. */
export function heldMessage(hold: Hold): string {
  const names = hold.devices.map((d) => d.name).join(', ');
  if (hold.status === 'active') return `Held ${names || 'the devices'} until ${formatDateTime(hold.expires_at)}.`;
  return `The hold waits in the queue${hold.position ? ` at position ${hold.position}` : ''}; it starts when the devices are free.`;
}
