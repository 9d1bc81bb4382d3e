import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/svelte';
import RunProgress from './RunProgress.svelte';
import type { TestRun } from '../types';

function running(startedSecondsAgo: number, progress = 0): TestRun {
  return {
    id: 'r1',
    status: 'running',
    verdict: null,
    test_cases: [{ id: 'c1', version: 1, name: 'One case', description: '', criteria: [], duration_s: 300, timeout_s: 600, parameters: {}, tags: [], execution: { executor: 'simulate', command: [], per_device: true } }],
    environment: { id: 'e1', name: 'Bench', description: '', variables: {} },
    devices: [],
    parameters: {},
    started_by: 'ada@lab.test',
    created_at: new Date(Date.now() - startedSecondsAgo * 1000 - 1000).toISOString(),
    started_at: new Date(Date.now() - startedSecondsAgo * 1000).toISOString(),
    finished_at: null,
    deadline: new Date(Date.now() + 3600_000).toISOString(),
    failure_reason: '',
    progress,
    progress_message: '',
    last_report_at: null,
    results: [],
  };
}

describe('RunProgress', () => {
  it('moves a one-case run’s bar by the elapsed time and says it is an estimate', () => {
    render(RunProgress, { props: { run: running(150) } });
    const bar = screen.getByRole('progressbar');
    expect(Number(bar.getAttribute('value'))).toBeGreaterThan(0.45);
    expect(screen.getByText(/^about 5\d % \(estimated: 2 min 3\d s of 5 min\)$/)).toBeTruthy();
  });

  it('shows the short form in lists, the whole label as its title', () => {
    render(RunProgress, { props: { run: running(150), showMessage: false } });
    const short = screen.getByText(/^≈ 5\d %$/);
    expect(short.getAttribute('title')).toMatch(/estimated/);
  });
});
