// How far a run has got, for its progress bar. A runner may report progress only between test
// cases (a run of one case would sit at 0 % until it ends), so while a run is running the bar
// shows whichever is further: what the runner reported, or the time elapsed since it started
// against the expected duration of its test cases. The time estimate stays below 100 %: only
// the run's end says it is done.

import { formatDuration, formatPercent } from './format';
import type { TestRun } from './types';

/** The highest the elapsed-time estimate goes while the run has not finished. */
export const ESTIMATE_CAP = 0.99;

export interface ProgressView {
  /** 0..1, for <progress value>. */
  fraction: number;
  /** The fraction in words, saying when it is an estimate from the elapsed time. */
  label: string;
  /** For narrow places (lists): `≈ 40 %` for an estimate. */
  short: string;
  /** Whether the elapsed time, not the runner's report, set the fraction. */
  estimated: boolean;
}

type RunTiming = Pick<TestRun, 'status' | 'progress' | 'started_at'> & {
  test_cases: { duration_s: number }[];
};

const clamp = (value: number) => (Number.isFinite(value) ? Math.max(0, Math.min(1, value)) : 0);

/** The progress to show at `now` (ms since the epoch); null while the run waits for a runner. */
export function runProgress(run: RunTiming, now: number): ProgressView | null {
  if (run.status === 'queued' || run.status === 'waiting') return null;
  const reported = clamp(run.progress ?? 0);
  if (run.status !== 'running') {
    const fraction = run.status === 'completed' ? 1 : reported;
    return { fraction, label: formatPercent(fraction), short: formatPercent(fraction), estimated: false };
  }
  const expected = run.test_cases.reduce((sum, c) => sum + Math.max(0, c.duration_s || 0), 0);
  const elapsed = run.started_at ? Math.max(0, (now - new Date(run.started_at).getTime()) / 1000) : 0;
  const byTime = expected > 0 ? Math.min(elapsed / expected, ESTIMATE_CAP) : 0;
  if (byTime <= reported) {
    return { fraction: reported, label: formatPercent(reported), short: formatPercent(reported), estimated: false };
  }
  const label =
    elapsed >= expected
      ? `${formatPercent(byTime)} (estimated; longer than the expected ${formatDuration(expected)})`
      : `about ${formatPercent(byTime)} (estimated: ${formatDuration(elapsed)} of ${formatDuration(expected)})`;
  return { fraction: byTime, label, short: `≈ ${formatPercent(byTime)}`, estimated: true };
}
