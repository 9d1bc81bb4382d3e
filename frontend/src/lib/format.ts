// How dates, durations and states read in the UI.

import type { DeviceStatus, RunStatus, Verdict } from './types';

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "just now", "5 min ago", "in 3 h", "2 days ago" — coarse on purpose. */
export function relativeTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'never';
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((then - now) / 1000);
  const abs = Math.abs(seconds);
  const say = (amount: number, unit: string) =>
    seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
  if (abs < 10) return 'just now';
  if (abs < 60) return say(abs, 's');
  if (abs < 3600) return say(Math.floor(abs / 60), 'min');
  if (abs < 86400) return say(Math.floor(abs / 3600), 'h');
  const days = Math.floor(abs / 86400);
  return say(days, days === 1 ? 'day' : 'days');
}

export function formatDuration(totalSeconds: number | null | undefined): string {
  if (totalSeconds === null || totalSeconds === undefined || Number.isNaN(totalSeconds)) return '—';
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h === 0) return rest ? `${m} min ${rest} s` : `${m} min`;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Seconds between two timestamps (to `now` while the second is missing). */
export function elapsedSeconds(from: string | null, to: string | null, now: number = Date.now()): number | null {
  if (!from) return null;
  const end = to ? new Date(to).getTime() : now;
  return (end - new Date(from).getTime()) / 1000;
}

/** The text with its first letter in upper case: "test cases" → "Test cases". */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

const DEVICE_STATUS_LABELS: Record<DeviceStatus, string> = {
  available: 'available',
  in_test: 'in test',
  held: 'held',
  offline: 'offline',
  maintenance: 'maintenance',
  retired: 'retired',
};

export function deviceStatusLabel(status: DeviceStatus): string {
  return DEVICE_STATUS_LABELS[status] ?? status;
}

export function runStatusLabel(status: RunStatus): string {
  return status;
}

export function verdictLabel(verdict: Verdict | null): string {
  return verdict ?? 'no verdict yet';
}

export function isFinished(status: RunStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'aborted';
}

export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(6)));
}

export function formatPercent(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
}

/** `key=value` pairs of a label map, sorted, for display and search. */
export function labelPairs(labels: Record<string, string>): string[] {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => (value ? `${key}=${value}` : key));
}

/** A datetime-local input's value (local time) as an ISO timestamp with offset, or '' if empty. */
export function localInputToIso(value: string): string {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

export function isoToLocalInput(iso: string): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
