// The lab queue as the UI sees it: which devices fit a device request, whether a run (or hold)
// would start now, wait, or be refused, how an estimated start reads, and the queue's rows.
// The server decides; this is the preview the New run page shows before anyone submits.

import { labelsFromText } from './forms';
import type { Device, DeviceRequest, Priority, QueueItem, QueueStats, WaitingFor } from './types';

/** The model if given, and every label given with the same value (as the scheduler matches). */
export function matchesRequest(device: Device, request: DeviceRequest): boolean {
  const model = request.model?.trim();
  if (model && device.model !== model) return false;
  return Object.entries(request.labels).every(([key, value]) => device.labels[key] === value);
}

/** Free to be booked right now. */
export function isFree(device: Device): boolean {
  return device.status === 'available' && !device.offline_pending;
}

/** A retired device is never booked; every other one may become free. */
export function mayServe(device: Device): boolean {
  return device.status !== 'retired';
}

/** "meter: 2 × model EM-340, type=dongle", as the server words a request. */
export function describeRequest(request: DeviceRequest): string {
  const what = request.model?.trim() ? [`model ${request.model.trim()}`] : [];
  what.push(...Object.entries(request.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`));
  const role = request.role?.trim() ? `${request.role.trim()}: ` : '';
  return `${role}${request.count} × ${what.join(', ') || 'any device'}`;
}

export interface RequestCount {
  /** devices of the lab that fit (not retired) */
  matching: number;
  /** of those, how many are free now */
  free: number;
}

/** How many devices fit a request. Named devices fill their own places, so they do not count. */
export function countMatches(devices: Device[], request: DeviceRequest, named: string[] = []): RequestCount {
  const fit = devices.filter((d) => !named.includes(d.id) && mayServe(d) && matchesRequest(d, request));
  return { matching: fit.length, free: fit.filter(isFree).length };
}

/** Why a device is not free for a run now, for a "will wait" note. */
export function busyReason(device: Device): string {
  switch (device.status) {
    case 'in_test':
      return device.drain_pending ? 'in a test, then maintenance' : 'in a test';
    case 'held':
      return device.hold ? `held by ${device.hold.holder}` : 'held';
    case 'maintenance':
      return 'in maintenance';
    case 'offline':
      return 'offline';
    case 'retired':
      return 'retired';
    default:
      return device.offline_pending ? 'going offline' : 'busy';
  }
}

/** Whether the request places can all be filled at once from `pool` (a bipartite matching, so
 * one device never fills two places and an early request does not take what a later one needs). */
function fillable(requests: DeviceRequest[], pool: Device[]): boolean {
  const candidates = requests.map((r) => pool.map((d, i) => (matchesRequest(d, r) ? i : -1)).filter((i) => i >= 0));
  const places = requests.flatMap((r, i) => Array.from({ length: r.count }, () => i));
  if (places.length > pool.length) return false;
  const holder = new Array<number>(pool.length).fill(-1); // device index → place index
  const tryPlace = (place: number, seen: boolean[]): boolean => {
    for (const device of candidates[places[place]]) {
      if (seen[device]) continue;
      seen[device] = true;
      if (holder[device] === -1 || tryPlace(holder[device], seen)) {
        holder[device] = place;
        return true;
      }
    }
    return false;
  };
  return places.every((place) => tryPlace(place, new Array<boolean>(pool.length).fill(false)));
}

export type Outlook =
  | { kind: 'empty' }
  /** the server will refuse it (422): no set of lab devices could ever satisfy it */
  | { kind: 'impossible'; problems: string[] }
  | { kind: 'now' }
  | { kind: 'waits'; reasons: string[] };

/** Whether a run (or hold) on these named devices and requests starts now, waits, or is refused. */
export function startOutlook(devices: Device[], namedIds: string[], requests: DeviceRequest[]): Outlook {
  if (namedIds.length === 0 && requests.length === 0) return { kind: 'empty' };
  const byId = new Map(devices.map((d) => [d.id, d]));
  const named = namedIds.map((id) => byId.get(id));
  const rest = devices.filter((d) => !namedIds.includes(d.id));
  const problems: string[] = [];
  for (const device of named) if (device && !mayServe(device)) problems.push(`${device.name} is retired.`);
  if (named.some((d) => !d)) problems.push('A chosen device is no longer in the lab.');
  const usable = rest.filter(mayServe);
  requests.forEach((request, i) => {
    const { matching } = countMatches(usable, request);
    if (matching < request.count) {
      problems.push(`Request #${i + 1} (${describeRequest(request)}) needs ${request.count}; only ${matching} device${matching === 1 ? '' : 's'} of the lab match.`);
    }
  });
  if (problems.length === 0 && !fillable(requests, usable)) {
    problems.push('Together the requests need more devices than the lab has of those kinds.');
  }
  if (problems.length) return { kind: 'impossible', problems };

  const reasons = named.filter((d): d is Device => !!d && !isFree(d)).map((d) => `${d.name} is ${busyReason(d)}`);
  const free = rest.filter(isFree);
  requests.forEach((request, i) => {
    const count = countMatches(free, request);
    if (count.free < request.count) reasons.push(`request #${i + 1} (${describeRequest(request)}): ${count.free} of ${request.count} free now`);
  });
  if (reasons.length === 0 && !fillable(requests, free)) reasons.push('not enough free devices for all requests at once');
  return reasons.length ? { kind: 'waits', reasons } : { kind: 'now' };
}

/** "in ~12 min", "in ~2 h 10 min", "any moment now", or "unknown" when the server cannot tell. */
export function estimateText(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'unknown';
  const at = new Date(iso).getTime();
  if (Number.isNaN(at)) return 'unknown';
  const minutes = Math.round((at - now) / 60_000);
  if (minutes < 1) return 'any moment now';
  if (minutes < 60) return `in ~${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `in ~${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
  const days = Math.round(hours / 24);
  return `in ~${days} day${days === 1 ? '' : 's'}`;
}

/** What a waiting item waits for, one line per device or request, with device names. */
export function waitingLines(waits: WaitingFor | null | undefined, nameOf: (id: string) => string | undefined = () => undefined): string[] {
  if (!waits) return [];
  const devices = Object.entries(waits.devices).map(([id, why]) => `${nameOf(id) ?? id}: ${why}`);
  const requests = waits.requests.map((part) => {
    const kept = part.kept_for_earlier ? `, ${part.kept_for_earlier} kept for earlier items` : '';
    return `${part.description}: ${part.missing} missing${kept}`;
  });
  return [...devices, ...requests];
}

/** One row of the Queue page, whether it is a run or a hold. */
export interface QueueRow {
  key: string;
  kind: 'run' | 'hold';
  id: string;
  position: number;
  priority: Priority;
  who: string;
  /** test case names for a run, the reason for a hold */
  what: string;
  since: string;
  href: string | null;
  waitingFor: WaitingFor | null;
  estimatedStartAt: string | null;
}

export function queueRows(items: QueueItem[]): QueueRow[] {
  const rows: QueueRow[] = [];
  for (const item of items) {
    const estimate = item.estimated_start_at ?? null;
    if ((item.kind ?? 'run') === 'run' && item.run) {
      const run = item.run;
      rows.push({
        key: `run:${run.id}`,
        kind: 'run',
        id: run.id,
        position: item.position,
        priority: run.priority ?? 'normal',
        who: run.started_by,
        what: run.test_cases.map((c) => c.name).join(', '),
        since: run.created_at,
        href: `/runs/${run.id}`,
        waitingFor: item.waiting_for ?? run.waiting_for ?? null,
        estimatedStartAt: estimate ?? run.estimated_start_at ?? null,
      });
    } else if (item.kind === 'hold' && item.hold) {
      const hold = item.hold;
      rows.push({
        key: `hold:${hold.id}`,
        kind: 'hold',
        id: hold.id,
        position: item.position,
        priority: hold.priority ?? 'normal',
        who: hold.holder,
        what: hold.reason,
        since: hold.created_at,
        href: null,
        waitingFor: item.waiting_for ?? hold.waiting_for ?? null,
        estimatedStartAt: estimate ?? hold.estimated_start_at ?? null,
      });
    }
  }
  return rows.sort((a, b) => a.position - b.position);
}

/** Who may take an item out of the queue: its owner, or an admin. */
export function mayCancel(owner: string, me: string | null, admin: boolean): boolean {
  return admin || (me !== null && owner === me);
}

/** The priorities a role may ask for: high only for engineers and admins (the server records it). */
export function prioritiesFor(role: string | null): Priority[] {
  return role === 'engineer' || role === 'admin' ? ['low', 'normal', 'high'] : ['low', 'normal'];
}

/** A device request as the form edits it: labels as one "key=value, …" text. */
export interface RequestRow {
  role: string;
  model: string;
  labels: string;
  count: number;
}

export const emptyRequestRow = (): RequestRow => ({ role: '', model: '', labels: '', count: 1 });

/** The request a form row stands for, and what is wrong with it (by field) if anything. */
export function requestFromRow(row: RequestRow): { request: DeviceRequest; errors: Partial<Record<'labels' | 'count', string>> } {
  const { value: labels, errors: problems } = labelsFromText(row.labels);
  const errors: Partial<Record<'labels' | 'count', string>> = {};
  if (problems.labels) errors.labels = problems.labels[0];
  const count = Number(row.count);
  if (!Number.isInteger(count) || count < 1 || count > 100) errors.count = 'A whole number from 1 to 100.';
  return {
    request: { role: row.role.trim() || null, model: row.model.trim() || null, labels, count: Number.isInteger(count) && count > 0 ? count : 1 },
    errors,
  };
}

/** The distinct models of the lab's devices, sorted, for the request's model picker. */
export function labModels(devices: Device[]): string[] {
  return [...new Set(devices.filter(mayServe).map((d) => d.model).filter(Boolean))].sort((a, b) => a.localeCompare(b));
}

/** The queue's length and longest wait from its rows, for servers whose /api/stats has no "queue". */
export function queueStatsFrom(rows: QueueRow[], now: number = Date.now()): QueueStats {
  const since = rows.map((r) => r.since).sort()[0] ?? null;
  return {
    length: rows.length,
    longest_wait_s: since ? Math.max(0, (now - new Date(since).getTime()) / 1000) : null,
    oldest_waiting_since: since,
  };
}
