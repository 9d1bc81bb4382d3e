import { describe, expect, it } from 'vitest';
import { describeCause, describeTrigger, modelsFromText, progressText, triggersFromText, triggersToText, type PlanRun } from './plans';

describe('plan triggers in a form', () => {
  it('reads one cron line each, with an optional time zone, and the firmware switch', () => {
    const { triggers, errors } = triggersFromText('0 2 * * * Europe/Berlin\n\n  */15 8-18 * * mon-fri  ', true);
    expect(errors).toEqual({});
    expect(triggers).toEqual([
      { kind: 'cron', cron: '0 2 * * *', timezone: 'Europe/Berlin' },
      { kind: 'cron', cron: '*/15 8-18 * * mon-fri', timezone: 'UTC' },
      { kind: 'new_firmware', cron: null, timezone: 'UTC' },
    ]);
  });

  it('says which line is not a cron expression', () => {
    const { triggers, errors } = triggersFromText('0 2 * * *\n0 2 *', false);
    expect(triggers).toHaveLength(1);
    expect(errors.triggers[0]).toMatch(/^Line 2: five cron fields/);
  });

  it('writes cron triggers back as the lines it reads', () => {
    const triggers = triggersFromText('0 2 * * * Europe/Berlin\n30 * * * *', true).triggers;
    expect(triggersToText(triggers)).toBe('0 2 * * * Europe/Berlin\n30 * * * *');
    expect(triggers.map(describeTrigger)).toEqual(['cron 0 2 * * * (Europe/Berlin)', 'cron 30 * * * * (UTC)', 'on new firmware']);
  });

  it('takes each model of the matrix once', () => {
    expect(modelsFromText(' EM-340, EM-540,,EM-340 ')).toEqual(['EM-340', 'EM-540']);
    expect(modelsFromText('')).toEqual([]);
  });
});

describe('plan runs in words', () => {
  const planRun = (by_status: Record<string, number>, finished: number, total: number) =>
    ({ progress: { total, finished, by_status, fraction: finished / total } }) as unknown as PlanRun;

  it('counts finished runs and names what the others are doing', () => {
    expect(progressText(planRun({ completed: 1, running: 1, waiting: 1 }, 1, 3))).toBe('1 of 3 runs finished (1 running, 1 waiting)');
    expect(progressText(planRun({ completed: 1 }, 1, 1))).toBe('1 of 1 run finished');
  });

  it('says what started a plan run', () => {
    const base = { by: '', slot: null, device_id: '', firmware_version: '' };
    expect(describeCause({ ...base, kind: 'manual', by: 'alice@lab' })).toBe('started by alice@lab');
    expect(describeCause({ ...base, kind: 'cron', slot: '2026-03-01T02:00:00+00:00' })).toBe('cron slot 2026-03-01T02:00:00+00:00');
    expect(describeCause({ ...base, kind: 'new_firmware', device_id: 'd1', firmware_version: '1.1' }, () => 'meter 1')).toBe(
      'new firmware 1.1 on meter 1',
    );
  });
});
