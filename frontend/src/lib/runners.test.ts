import { describe, expect, it } from 'vitest';
import { drainNote, failureText, runnerActivity, runnerDetails, sortRunners } from './runners';
import type { Runner } from './types';

function runner(changes: Partial<Runner> = {}): Runner {
  return {
    id: 'r1',
    host: '',
    version: '',
    executors: [],
    state: 'online',
    busy: false,
    current_run_ids: [],
    first_seen_at: '2026-12-01T08:00:00+00:00',
    last_seen_at: '2026-12-01T09:00:00+00:00',
    runs_done: 0,
    failures: 0,
    drained: false,
    drained_by: '',
    drained_at: null,
    drain_reason: '',
    ...changes,
  };
}

describe('runners', () => {
  it('lists online before silent, busy before idle, then by id', () => {
    const order = sortRunners([
      runner({ id: 'c', state: 'silent', busy: true }),
      runner({ id: 'b' }),
      runner({ id: 'a', state: 'silent' }),
      runner({ id: 'd', busy: true }),
      runner({ id: 'a2' }),
    ]).map((r) => r.id);
    expect(order).toEqual(['d', 'a2', 'b', 'c', 'a']);
  });

  it('says what a runner does, drained or not', () => {
    expect(runnerActivity(runner({ busy: true }))).toBe('running');
    expect(runnerActivity(runner({ busy: true, drained: true }))).toBe('finishing its run (drained)');
    expect(runnerActivity(runner())).toBe('idle');
    expect(runnerActivity(runner({ drained: true }))).toBe('idle, drained');
  });

  it('gives failures as a share of the runs done', () => {
    expect(failureText(runner())).toBe('no runs yet');
    expect(failureText(runner({ runs_done: 40 }))).toBe('none');
    expect(failureText(runner({ runs_done: 40, failures: 2 }))).toBe('2 of 40 (5 %)');
  });

  it('leaves out what an older runner did not say about itself', () => {
    expect(runnerDetails(runner())).toBe('');
    expect(runnerDetails(runner({ host: 'pc-3', version: '0.1.0', executors: ['command', 'simulate'] }))).toBe(
      'pc-3 · v0.1.0 · command, simulate',
    );
    expect(runnerDetails(runner({ host: 'pc-3' }))).toBe('pc-3');
  });

  it('says who drained a runner and why', () => {
    expect(drainNote(runner())).toBe('');
    expect(drainNote(runner({ drained: true, drained_by: 'ada@lab', drain_reason: 'PC update' }))).toBe('drained by ada@lab: PC update');
    expect(drainNote(runner({ drained: true }))).toBe('drained by an admin');
  });
});
