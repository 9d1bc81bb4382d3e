// Device utilisation per day (/api/stats/utilisation): the share of the devices' time in each
// status, drawn as one stacked bar per day.

import { send } from './api';

export interface DayUse {
  day: string;
  device_seconds: number;
  shares: Partial<Record<string, number>>;
}

export const utilisation = {
  get: (days = 14, signal?: AbortSignal) =>
    send<{ items: DayUse[] }>('GET', '/api/stats/utilisation', { query: { days: String(days) }, signal }).then((r) => r.items),
};

/** The statuses in the order they are stacked, with their colours. */
export const STATUS_ORDER = [
  { status: 'in_test', label: 'In test', colour: '#2563eb' },
  { status: 'held', label: 'Held', colour: '#9333ea' },
  { status: 'available', label: 'Available', colour: '#16a34a' },
  { status: 'maintenance', label: 'Maintenance', colour: '#d97706' },
  { status: 'offline', label: 'Offline', colour: '#6b7280' },
  { status: 'retired', label: 'Retired', colour: '#d1d5db' },
] as const;

export interface Segment {
  status: string;
  label: string;
  colour: string;
  start: number; // percent from the bar's left
  width: number; // percent
}

/** A day's bar: its statuses side by side in STATUS_ORDER, widths in percent summing to 100
 * (shares are rounded by the server; the last segment takes the remainder). */
export function segments(day: DayUse): Segment[] {
  const present = STATUS_ORDER.filter((s) => (day.shares[s.status] ?? 0) > 0);
  const total = present.reduce((sum, s) => sum + (day.shares[s.status] ?? 0), 0);
  let start = 0;
  return present.map((s, i) => {
    const width = i === present.length - 1 ? 100 - start : ((day.shares[s.status] ?? 0) / total) * 100;
    const segment = { status: s.status, label: s.label, colour: s.colour, start, width };
    start += width;
    return segment;
  });
}

/** "In test 42 %" for a segment. */
export function segmentTitle(segment: Segment): string {
  return `${segment.label} ${Math.round(segment.width)} %`;
}
