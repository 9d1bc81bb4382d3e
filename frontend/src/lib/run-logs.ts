// A run's log and files on the run page: which lines a panel shows (device, lowest level,
// search), how they merge as they arrive (by their number: a reconnect may send a line twice),
// and how a file's size reads. The follower that keeps the log growing is in run-logs.svelte.ts.

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogLine {
  seq: number;
  at: string;
  level: LogLevel;
  message: string;
  device_id: string | null;
  test_case_id: string | null;
}

export interface Artifact {
  id: string;
  run_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  device_id: string | null;
  test_case_id: string | null;
  created_at: string;
  download_url: string;
}

/** The panel of a device shows its lines and the run's own (no device); `null` shows all. */
export const ALL_DEVICES = null;

export interface LogView {
  device: string | null;
  minLevel: LogLevel;
  search: string;
}

export function levelRank(level: string): number {
  const rank = LOG_LEVELS.indexOf(level as LogLevel);
  return rank === -1 ? 1 : rank;
}

export function visibleLines(lines: readonly LogLine[], view: LogView): LogLine[] {
  const needle = view.search.trim().toLowerCase();
  const lowest = levelRank(view.minLevel);
  return lines.filter(
    (line) =>
      (view.device === ALL_DEVICES || line.device_id === null || line.device_id === view.device) &&
      levelRank(line.level) >= lowest &&
      (!needle || line.message.toLowerCase().includes(needle)),
  );
}

/** `known` with `arrived` added in order of their numbers, each number once; at most `keep`
 * lines (the newest), so a chatty run cannot fill the browser's memory. */
export function mergeLines(known: readonly LogLine[], arrived: readonly LogLine[], keep = 20_000): LogLine[] {
  if (!arrived.length) return known as LogLine[];
  const last = known.length ? known[known.length - 1].seq : 0;
  let merged: LogLine[];
  if (arrived.every((line, i) => line.seq > (i ? arrived[i - 1].seq : last))) {
    merged = [...known, ...arrived]; // the usual case: new lines after the known ones
  } else {
    const bySeq = new Map(known.map((line) => [line.seq, line]));
    for (const line of arrived) bySeq.set(line.seq, line);
    merged = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
  return merged.length > keep ? merged.slice(merged.length - keep) : merged;
}

export function lastSeq(lines: readonly LogLine[]): number {
  return lines.length ? lines[lines.length - 1].seq : 0;
}

/** A time of day for a log line (the date is in the title). */
export function lineTime(at: string): string {
  const moment = new Date(at);
  if (Number.isNaN(moment.getTime())) return at;
  return moment.toISOString().slice(11, 23);
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
