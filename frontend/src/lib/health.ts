// Health checks in words, and the form that designates one: kept out of the components so
// they can be tested on their own.

import type { FieldErrors } from './api';
import { labelsFromText } from './forms';
import type { Parsed } from './forms';
import type { Device, HealthCheck, HealthCheckWrite } from './types';

/** Which devices a designation takes: "model EM-340 · type=meter". */
export function designatedDevices(check: Pick<HealthCheck, 'model' | 'labels'>): string {
  const parts = check.model ? [`model ${check.model}`] : [];
  parts.push(...Object.entries(check.labels).map(([k, v]) => `${k}=${v}`));
  return parts.join(' · ') || 'no device';
}

/** When it runs: "every 24 h, every 10 runs, after maintenance or offline". */
export function checkSchedule(check: Pick<HealthCheck, 'every_hours' | 'every_runs' | 'after_service'>): string {
  const when = [];
  if (check.every_hours != null) when.push(`every ${check.every_hours} h`);
  if (check.every_runs != null) when.push(`every ${check.every_runs} ${check.every_runs === 1 ? 'run' : 'runs'}`);
  if (check.after_service) when.push('after maintenance or offline');
  return when.join(', ') || 'never';
}

/** Whether the device is out of booking because its health check failed. */
export function isBad(device: Pick<Device, 'health'>): boolean {
  return device.health === 'bad';
}

export interface HealthCheckForm {
  name: string;
  test_case_id: string;
  environment_id: string;
  model: string;
  labels: string;
  every_hours: string;
  every_runs: string;
  after_service: boolean;
}

export function emptyHealthCheckForm(): HealthCheckForm {
  return { name: '', test_case_id: '', environment_id: '', model: '', labels: '', every_hours: '24', every_runs: '', after_service: true };
}

function count(text: string, field: string, errors: FieldErrors, whole: boolean): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const value = Number(trimmed);
  if (!Number.isFinite(value) || value <= 0 || (whole && !Number.isInteger(value))) {
    (errors[field] ??= []).push(whole ? 'A whole number above 0.' : 'A number of hours above 0.');
    return null;
  }
  return value;
}

/** The request body of the form, or what is wrong with it (the API's field names). */
export function healthCheckPayload(form: HealthCheckForm): Parsed<HealthCheckWrite> {
  const labels = labelsFromText(form.labels);
  const errors: FieldErrors = { ...labels.errors };
  const value: HealthCheckWrite = {
    name: form.name.trim(),
    test_case_id: form.test_case_id,
    environment_id: form.environment_id,
    model: form.model.trim(),
    labels: labels.value,
    every_hours: count(form.every_hours, 'every_hours', errors, false),
    every_runs: count(form.every_runs, 'every_runs', errors, true),
    after_service: form.after_service,
  };
  if (!value.name) (errors.name ??= []).push('Give it a name.');
  if (!value.test_case_id) (errors.test_case_id ??= []).push('Pick the test case it runs.');
  if (!value.environment_id) (errors.environment_id ??= []).push('Pick an environment.');
  if (!value.model && Object.keys(value.labels).length === 0) (errors.model ??= []).push('Name a model, labels or both.');
  if (value.every_hours == null && value.every_runs == null && !value.after_service && !errors.every_hours && !errors.every_runs)
    (errors.every_hours ??= []).push('Say when it runs.');
  return { value, errors };
}
