// The Runners page's rules: the order runners are listed in and how each one reads.

import type { Runner } from './types';

/** Online before silent, busy before idle, then by id: what works now comes first. */
export function sortRunners(runners: Runner[]): Runner[] {
  const rank = (r: Runner) => (r.state === 'online' ? 0 : 2) + (r.busy ? 0 : 1);
  return [...runners].sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** "busy" with its run(s), or "idle"; a drained runner says so, since it takes no new run. */
export function runnerActivity(runner: Runner): string {
  if (runner.busy) return runner.drained ? 'finishing its run (drained)' : 'running';
  return runner.drained ? 'idle, drained' : 'idle';
}

/** The failures among the runs done, as a share ("2 of 40 (5 %)"); "none" without runs. */
export function failureText(runner: Runner): string {
  if (runner.runs_done === 0) return 'no runs yet';
  if (runner.failures === 0) return 'none';
  const share = Math.round((100 * runner.failures) / runner.runs_done);
  return `${runner.failures} of ${runner.runs_done} (${share} %)`;
}

/** "host · version · executors", leaving out what an older runner did not say. */
export function runnerDetails(runner: Runner): string {
  const parts = [runner.host, runner.version && `v${runner.version}`, runner.executors.join(', ')];
  return parts.filter(Boolean).join(' · ');
}

/** Who drained it, why and since when, for its badge's title. */
export function drainNote(runner: Runner): string {
  if (!runner.drained) return '';
  const why = runner.drain_reason ? `: ${runner.drain_reason}` : '';
  return `drained by ${runner.drained_by || 'an admin'}${why}`;
}
