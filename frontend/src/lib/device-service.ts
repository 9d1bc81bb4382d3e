// Which status changes a person can make on a device, and how the UI words them.

import type { Device, ManualStatus } from './types';

export interface StatusAction {
  status: ManualStatus;
  /** the button's text */
  label: string;
  /** the API refuses maintenance and retirement without a reason */
  needsReason: boolean;
}

const needsReason = (status: ManualStatus) => status === 'maintenance' || status === 'retired';
const action = (status: ManualStatus, label: string): StatusAction => ({ status, label, needsReason: needsReason(status) });

/** The status changes offered for a device, in the order shown. `canUnretire` is whether the
 * user may bring a retired device back (admins). A device in a test is not retired: it is
 * drained first (maintenance once its run ends). */
export function statusActions(device: Device, canUnretire: boolean): StatusAction[] {
  switch (device.status) {
    case 'retired':
      return canUnretire ? [action('available', 'Bring back'), action('maintenance', 'Back to maintenance')] : [];
    case 'in_test':
    case 'held': {
      const what = device.status === 'held' ? 'hold' : 'run';
      return [
        device.drain_pending ? action('available', 'Cancel drain') : action('maintenance', `Maintenance after this ${what}`),
        device.offline_pending ? action('available', 'Cancel offline') : action('offline', `Offline after this ${what}`),
      ].filter((a, i, all) => all.findIndex((b) => b.status === a.status) === i);
    }
    case 'maintenance':
      return [action('available', 'Set available'), action('offline', 'Set offline'), action('retired', 'Retire')];
    case 'offline':
      return [action('available', 'Set available'), action('maintenance', 'Set maintenance'), action('retired', 'Retire')];
    default:
      return [action('maintenance', 'Set maintenance'), action('offline', 'Set offline'), action('retired', 'Retire')];
  }
}

/** What the dialog's title says for a change. */
export function actionTitle(device: Device, status: ManualStatus): string {
  const name = device.name;
  if (device.status === 'in_test' || device.status === 'held') {
    const what = device.status === 'held' ? 'hold' : 'run';
    if (status === 'maintenance') return `Drain ${name}: maintenance after its ${what}`;
    if (status === 'offline') return `Take ${name} offline after its ${what}`;
    return `Cancel the pending change of ${name}`;
  }
  if (status === 'maintenance') return `Put ${name} into maintenance`;
  if (status === 'retired') return `Retire ${name}`;
  if (status === 'offline') return `Take ${name} offline`;
  return device.status === 'retired' ? `Bring ${name} back into the lab` : `Make ${name} available`;
}

/** The toast after a change went through. */
export function changedMessage(device: Device): string {
  const what = device.status === 'held' ? 'hold' : 'run';
  if (device.drain_pending) return `${device.name} goes to maintenance once its ${what} ends.`;
  if (device.offline_pending) return `${device.name} is offline once its ${what} ends.`;
  if (device.status === 'in_test' || device.status === 'held') return `${device.name} stays available after its ${what}.`;
  if (device.status === 'maintenance') return `${device.name} is in maintenance.`;
  if (device.status === 'retired') return `${device.name} is retired.`;
  if (device.status === 'offline') return `${device.name} is offline.`;
  return `${device.name} is available.`;
}

/** "maintenance by alice@lab: recalibrate" — what a person set, for lists and details. */
export function outOfServiceText(device: Device): string | null {
  const note = device.out_of_service;
  if (!note || device.service_state === 'silent') return null;
  const what = device.service_state === 'offline' ? 'offline by hand' : device.service_state;
  return `${what} by ${note.by}${note.reason ? `: ${note.reason}` : ''}`;
}

/** The heading over who/why/since on the device page. */
export function outOfServiceTitle(device: Device): string {
  if (device.drain_pending) return device.status === 'held' ? 'Maintenance after its hold' : 'Maintenance after its run';
  switch (device.service_state) {
    case 'silent':
      return 'Offline by silence';
    case 'offline':
      return device.offline_pending ? 'Offline after its run' : 'Offline by hand';
    case 'maintenance':
      return 'Maintenance';
    case 'retired':
      return 'Retired';
    default:
      return 'In service';
  }
}
