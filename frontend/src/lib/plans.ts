// Test plans in the UI: the types of /api/plans and /api/plan-runs, their calls, and the pure
// pieces the Plans pages use (a form's fields to a request body, triggers to words).

import { send, type FieldErrors, type Query } from './api';
import type { DeviceRequest, Page, RunStatus, Verdict } from './types';

export type TriggerKind = 'cron' | 'new_firmware';
export type Priority = 'low' | 'normal' | 'high';

export interface Trigger {
  kind: TriggerKind;
  cron: string | null;
  timezone: string;
}

export interface PlanDefinition {
  name: string;
  version: number;
  test_case_ids: string[];
  environment_ids: string[];
  device_ids: string[];
  device_requests: DeviceRequest[];
  models: string[];
  parameters: Record<string, unknown>;
  priority: Priority;
  triggers: Trigger[];
}

export interface PlanRunSummary {
  id: string;
  created_at: string;
  finished_at: string | null;
  verdict: Verdict | null;
  cause: 'manual' | 'cron' | 'new_firmware';
}

export interface Plan extends PlanDefinition {
  id: string;
  created_at: string | null;
  updated_at: string | null;
  last_runs?: PlanRunSummary[];
}

export type PlanWrite = Omit<PlanDefinition, 'version'>;

export interface PlanCause {
  kind: 'manual' | 'cron' | 'new_firmware';
  by: string;
  slot: string | null;
  device_id: string;
  firmware_version: string;
}

export interface PlanRunRun {
  run_id: string;
  environment_id: string;
  environment_name: string;
  model: string | null;
  status: RunStatus | null;
  verdict: Verdict | null;
  progress: number | null;
}

export interface PlanRun {
  id: string;
  plan_id: string;
  plan: PlanDefinition;
  cause: PlanCause;
  runs: PlanRunRun[];
  skipped: string[];
  progress: { total: number; finished: number; by_status: Record<string, number>; fraction: number };
  verdict: Verdict | null;
  created_at: string;
  finished_at: string | null;
}

const id = encodeURIComponent;

export const plansApi = {
  list: (query: Query = {}, signal?: AbortSignal) => send<Page<Plan>>('GET', '/api/plans', { query, signal }),
  get: (planId: string) => send<Plan>('GET', `/api/plans/${id(planId)}`),
  create: (plan: PlanWrite) => send<Plan>('POST', '/api/plans', { body: plan }),
  update: (planId: string, changes: Partial<PlanWrite>) => send<Plan>('PATCH', `/api/plans/${id(planId)}`, { body: changes }),
  remove: (planId: string) => send<void>('DELETE', `/api/plans/${id(planId)}`),
  start: (planId: string) => send<PlanRun>('POST', `/api/plans/${id(planId)}/start`),
  runs: (planId: string, limit = 20) => send<Page<PlanRun>>('GET', '/api/plan-runs', { query: { plan_id: planId, limit } }),
  run: (planRunId: string, signal?: AbortSignal) => send<PlanRun>('GET', `/api/plan-runs/${id(planRunId)}`, { signal }),
};

/** One cron trigger per line: five fields, then optionally the IANA time zone. */
export function triggersFromText(text: string, onNewFirmware: boolean): { triggers: Trigger[]; errors: FieldErrors } {
  const triggers: Trigger[] = [];
  const errors: FieldErrors = {};
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .forEach((line, index) => {
      const parts = line.split(/\s+/);
      if (parts.length < 5 || parts.length > 6) {
        errors.triggers = [`Line ${index + 1}: five cron fields, then optionally a time zone (e.g. 0 2 * * * Europe/Berlin).`];
        return;
      }
      triggers.push({ kind: 'cron', cron: parts.slice(0, 5).join(' '), timezone: parts[5] ?? 'UTC' });
    });
  if (onNewFirmware) triggers.push({ kind: 'new_firmware', cron: null, timezone: 'UTC' });
  return { triggers, errors };
}

/** The cron lines of a plan's triggers, as `triggersFromText` reads them back. */
export function triggersToText(triggers: Trigger[]): string {
  return triggers
    .filter((t) => t.kind === 'cron' && t.cron)
    .map((t) => (t.timezone && t.timezone !== 'UTC' ? `${t.cron} ${t.timezone}` : `${t.cron}`))
    .join('\n');
}

export function describeTrigger(trigger: Trigger): string {
  if (trigger.kind === 'new_firmware') return 'on new firmware';
  return `cron ${trigger.cron} (${trigger.timezone})`;
}

/** Models of the matrix: comma-separated, each once. */
export function modelsFromText(text: string): string[] {
  return [...new Set(text.split(',').map((m) => m.trim()).filter(Boolean))];
}

export function describeCause(cause: PlanCause, deviceName: (id: string) => string = (d) => d): string {
  switch (cause.kind) {
    case 'manual':
      return `started by ${cause.by}`;
    case 'cron':
      return `cron slot ${cause.slot ?? ''}`.trim();
    case 'new_firmware':
      return `new firmware ${cause.firmware_version} on ${deviceName(cause.device_id)}`;
  }
}

/** "2 of 3 runs finished (1 running)" */
export function progressText(planRun: PlanRun): string {
  const { finished, total, by_status } = planRun.progress;
  const going = Object.entries(by_status)
    .filter(([status]) => !['completed', 'failed', 'aborted'].includes(status))
    .map(([status, n]) => `${n} ${status}`);
  return `${finished} of ${total} run${total === 1 ? '' : 's'} finished` + (going.length ? ` (${going.join(', ')})` : '');
}
