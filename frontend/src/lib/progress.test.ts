import { describe, expect, it } from 'vitest';
import { ESTIMATE_CAP, runProgress } from './progress';

const START = Date.parse('2026-12-01T10:00:00Z');
const at = (seconds: number) => START + seconds * 1000;

function run(status: 'waiting' | 'queued' | 'running' | 'completed' | 'failed' | 'aborted', progress = 0, durations = [300]) {
  return {
    status,
    progress,
    started_at: status === 'queued' || status === 'waiting' ? null : new Date(START).toISOString(),
    test_cases: durations.map((duration_s) => ({ duration_s })),
  };
}

describe('runProgress', () => {
  it('moves with the elapsed time while a one-case run reports nothing', () => {
    expect(runProgress(run('running'), at(0))).toEqual({ fraction: 0, label: '0 %', short: '0 %', estimated: false });
    const halfway = runProgress(run('running'), at(150))!;
    expect(halfway.fraction).toBeCloseTo(0.5);
    expect(halfway.estimated).toBe(true);
    expect(halfway.label).toBe('about 50 % (estimated: 2 min 30 s of 5 min)');
    expect(halfway.short).toBe('≈ 50 %');
  });

  it('shows the runner’s report when it is further than the estimate', () => {
    expect(runProgress(run('running', 0.8), at(60))).toEqual({ fraction: 0.8, label: '80 %', short: '80 %', estimated: false });
    expect(runProgress(run('running', 0.2), at(240))!.fraction).toBeCloseTo(0.8);
  });

  it('adds up the expected durations of all the run’s test cases', () => {
    expect(runProgress(run('running', 0, [100, 300]), at(100))!.fraction).toBeCloseTo(0.25);
  });

  it('stays below 100 % until the run finishes, however long it takes', () => {
    const late = runProgress(run('running'), at(900))!;
    expect(late.fraction).toBe(ESTIMATE_CAP);
    expect(late.label).toBe('99 % (estimated; longer than the expected 5 min)');
    expect(runProgress(run('completed', 0.3), at(900))).toEqual({ fraction: 1, label: '100 %', short: '100 %', estimated: false });
  });

  it('keeps the reported progress of a run that failed or was cancelled', () => {
    expect(runProgress(run('failed', 0.4), at(900))!.fraction).toBe(0.4);
    expect(runProgress(run('aborted'), at(900))!.fraction).toBe(0);
  });

  it('waits for a runner while queued, and estimates nothing without an expected duration', () => {
    expect(runProgress(run('queued'), at(100))).toBeNull();
    expect(runProgress(run('waiting'), at(100))).toBeNull(); // no devices yet, nothing to show
    expect(runProgress(run('running', 0.1, [0]), at(100))).toEqual({ fraction: 0.1, label: '10 %', short: '10 %', estimated: false });
    expect(runProgress({ ...run('running'), started_at: null }, at(100))!.fraction).toBe(0);
  });

  it('ignores reports out of range and a clock behind the start', () => {
    expect(runProgress(run('running', 7), at(0))!.fraction).toBe(1);
    expect(runProgress(run('running', -1), at(-60))!.fraction).toBe(0);
  });
});
