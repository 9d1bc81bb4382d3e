// Comparing firmware versions (or two runs) and the tracked regressions: the calls to
// /api/compare, /api/regressions and /api/firmware-versions, and how their answers read.

import { send } from './api';

export type Change = 'regression' | 'fix' | 'unchanged' | 'new' | 'missing';
export type SideVerdict = 'pass' | 'marginal' | 'fail' | 'flaky' | 'inconclusive';

export interface RunRef {
  run_id: string;
  at: string;
}

export interface Side {
  verdict: SideVerdict;
  results: number;
  passed: number;
  failed: number;
  inconclusive: number;
  latest_run: RunRef | null;
}

export interface MetricSide {
  count: number;
  mean: number | null;
  stddev: number | null;
}

export interface MetricComparison {
  metric: string;
  unit: string;
  condition: string;
  threshold: number | null;
  base: MetricSide | null;
  target: MetricSide | null;
  difference: number | null;
  direction: 'better' | 'worse' | 'same' | null;
  beyond_spread: boolean | null;
}

export interface CaseKey {
  test_case_id: string;
  test_case_name: string;
  model: string;
  environment_id: string;
  environment_name: string;
}

export interface CaseComparison extends CaseKey {
  change: Change;
  flaky: boolean;
  base: Side | null;
  target: Side | null;
  metrics: MetricComparison[];
}

export interface Comparison {
  base: string;
  target: string;
  counts: Record<Change, number>;
  items: CaseComparison[];
}

export interface FirmwareRef {
  firmware: string;
  run: RunRef | null;
}

export interface Regression extends CaseKey {
  status: 'open' | 'closed';
  flaky: boolean;
  last_passing: FirmwareRef;
  first_failing: FirmwareRef;
  fixed_by: FirmwareRef | null;
}

export interface FlakyCase extends CaseKey {
  firmware: string;
  passed: number;
  failed: number;
  latest_run: RunRef | null;
}

export interface FirmwareVersion {
  version: string;
  first_seen: string;
  results: number;
}

/** What the Compare page compares: two firmware versions or two runs, and the filters. */
export interface Selection {
  mode: 'firmware' | 'runs';
  base: string;
  target: string;
  model?: string;
  environment_id?: string;
}

export const comparison = {
  compare: (selection: Selection, signal?: AbortSignal) =>
    send<Comparison>('GET', '/api/compare', { query: compareQuery(selection), signal }),
  regressions: (status?: 'open' | 'closed', signal?: AbortSignal) =>
    send<{ items: Regression[]; flaky: FlakyCase[] }>('GET', '/api/regressions', { query: { status }, signal }),
  firmwareVersions: (signal?: AbortSignal) =>
    send<{ items: FirmwareVersion[] }>('GET', '/api/firmware-versions', { signal }).then((r) => r.items),
};

export function compareQuery(selection: Selection): Record<string, string | undefined> {
  const side = selection.mode === 'firmware' ? 'firmware' : 'run';
  return {
    [`base_${side}`]: selection.base.trim() || undefined,
    [`target_${side}`]: selection.target.trim() || undefined,
    model: selection.model?.trim() || undefined,
    environment_id: selection.environment_id || undefined,
  };
}

/** The selection a Compare page URL (`/compare?base_firmware=…`) stands for, if complete. */
export function selectionFrom(query: URLSearchParams): Selection | null {
  const mode = query.get('base_run') || query.get('target_run') ? 'runs' : 'firmware';
  const side = mode === 'firmware' ? 'firmware' : 'run';
  const base = query.get(`base_${side}`) ?? '';
  const target = query.get(`target_${side}`) ?? '';
  if (!base || !target) return null;
  return {
    mode,
    base,
    target,
    model: query.get('model') ?? undefined,
    environment_id: query.get('environment_id') ?? undefined,
  };
}

/** The link to the Compare page for a selection. */
export function compareLink(selection: Selection): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(compareQuery(selection))) if (value) params.set(key, value);
  return `/compare?${params}`;
}

/** The two versions to compare first: the newest against the one before it. */
export function defaultPair(versions: FirmwareVersion[]): { base: string; target: string } {
  const n = versions.length;
  if (n < 2) return { base: versions[0]?.version ?? '', target: '' };
  return { base: versions[n - 2].version, target: versions[n - 1].version };
}

/** The runs behind one side of a row, on the Runs page (by firmware, case and environment). */
export function runsLink(firmware: string, row: CaseKey): string {
  const params = new URLSearchParams({
    firmware,
    test_case_id: row.test_case_id,
    environment_id: row.environment_id,
    status: 'completed',
  });
  return `/runs?${params}`;
}

export const CHANGE_TONE: Record<Change, string> = {
  regression: 'bad',
  fix: 'ok',
  unchanged: 'idle',
  new: 'busy',
  missing: 'warn',
};

export const VERDICT_TONE: Record<SideVerdict, string> = {
  pass: 'ok',
  marginal: 'note',
  fail: 'bad',
  flaky: 'warn',
  inconclusive: 'idle',
};

function number(value: number): string {
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(value.toFixed(digits)));
}

/** "230 V" / "—": a mean with its unit. */
export function formatMean(side: MetricSide | null, unit: string): string {
  if (!side || side.mean === null) return '—';
  return unit ? `${number(side.mean)} ${unit}` : number(side.mean);
}

/** "+15 V" / "−0.3" / "±0": the target's mean against the base's. */
export function formatDifference(metric: MetricComparison): string {
  if (metric.difference === null) return '—';
  const unit = metric.unit ? ` ${metric.unit}` : '';
  if (metric.difference === 0) return `±0${unit}`;
  const sign = metric.difference > 0 ? '+' : '−';
  return `${sign}${number(Math.abs(metric.difference))}${unit}`;
}

/** How a metric's change reads: worse/better, and whether beyond the run-to-run spread. */
export function metricVerdict(metric: MetricComparison): { text: string; tone: string } {
  if (metric.direction === null || metric.direction === 'same') {
    return { text: metric.direction === 'same' ? 'same' : '', tone: 'idle' };
  }
  const significant = metric.beyond_spread === true;
  const spread = metric.beyond_spread === null ? ' (too few runs to tell)' : significant ? ', beyond 3σ' : ', within the spread';
  const tone = !significant ? 'idle' : metric.direction === 'worse' ? 'bad' : 'ok';
  return { text: `${metric.direction}${spread}`, tone };
}

/** Rows by what changed, for the summary line: "2 regressions · 1 fix · 5 unchanged". */
export function summaryLine(counts: Record<Change, number>): string {
  const words: [Change, string, string][] = [
    ['regression', 'regression', 'regressions'],
    ['fix', 'fix', 'fixes'],
    ['new', 'new', 'new'],
    ['missing', 'missing', 'missing'],
    ['unchanged', 'unchanged', 'unchanged'],
  ];
  const parts = words.filter(([change]) => counts[change]).map(([change, one, many]) => `${counts[change]} ${counts[change] === 1 ? one : many}`);
  return parts.length ? parts.join(' · ') : 'nothing to compare';
}
