// Keeping loaded lists current as live events arrive.

import type { Device, DeviceFilters, RunFilters, TestRun } from './types';

/** Replaces the item with the same id; otherwise adds it (at the front unless `append`). */
export function upsertById<T extends { id: string }>(items: T[], item: T, append = false): T[] {
  const index = items.findIndex((existing) => existing.id === item.id);
  if (index === -1) return append ? [...items, item] : [item, ...items];
  const copy = items.slice();
  copy[index] = item;
  return copy;
}

/** Replaces the item with the same id if present; leaves the list alone otherwise. */
export function replaceById<T extends { id: string }>(items: T[], item: T): T[] {
  return items.some((existing) => existing.id === item.id) ? upsertById(items, item) : items;
}

export function removeById<T extends { id: string }>(items: T[], id: string): T[] {
  return items.filter((item) => item.id !== id);
}

/** Whether a run (new or changed) belongs in a list filtered this way. */
export function runMatches(run: TestRun, filters: RunFilters): boolean {
  if (filters.status && run.status !== filters.status) return false;
  if (filters.verdict && run.verdict !== filters.verdict) return false;
  if (filters.purpose && (run.purpose ?? 'normal') !== filters.purpose) return false;
  if (filters.device_id && !run.devices.some((d) => d.id === filters.device_id)) return false;
  if (filters.environment_id && run.environment?.id !== filters.environment_id) return false;
  if (filters.test_case_id && !run.test_cases.some((c) => c.id === filters.test_case_id)) return false;
  if (filters.firmware && !run.devices.some((d) => d.firmware_version === filters.firmware)) return false;
  const created = new Date(run.created_at).getTime();
  if (filters.from && created < new Date(filters.from).getTime()) return false;
  if (filters.to && created > new Date(filters.to).getTime()) return false;
  return true;
}

/** Client-side twin of the device list's filters, for devices that change while shown. */
export function deviceMatches(device: Device, filters: DeviceFilters): boolean {
  if (filters.status && device.status !== filters.status) return false;
  if (!filters.status && !filters.include_retired && device.status === 'retired') return false;
  if (filters.q) {
    const needle = filters.q.toLowerCase();
    const haystack = [device.name, device.serial, device.model, device.location, device.firmware_version]
      .join(' ')
      .toLowerCase();
    if (!haystack.includes(needle)) return false;
  }
  if (filters.label) {
    const at = filters.label.indexOf(':');
    const key = at === -1 ? filters.label : filters.label.slice(0, at);
    if (!(key in device.labels)) return false;
    if (at !== -1 && device.labels[key] !== filters.label.slice(at + 1)) return false;
  }
  return true;
}
