import { describe, expect, it } from 'vitest';
import { checkSchedule, designatedDevices, emptyHealthCheckForm, healthCheckPayload, isBad } from './health';

describe('health checks in words', () => {
  it('names the devices by model and labels', () => {
    expect(designatedDevices({ model: 'EM-340', labels: { type: 'meter' } })).toBe('model EM-340 · type=meter');
    expect(designatedDevices({ model: '', labels: { rs485: 'yes' } })).toBe('rs485=yes');
  });

  it('says when it runs', () => {
    expect(checkSchedule({ every_hours: 24, every_runs: 10, after_service: true })).toBe('every 24 h, every 10 runs, after maintenance or offline');
    expect(checkSchedule({ every_hours: null, every_runs: 1, after_service: false })).toBe('every 1 run');
  });

  it('tells a bad device', () => {
    expect(isBad({ health: 'bad' })).toBe(true);
    expect(isBad({ health: 'unknown' })).toBe(false);
    expect(isBad({})).toBe(false); // an older server says nothing about health
  });
});

describe('the designation form', () => {
  const filled = { ...emptyHealthCheckForm(), name: ' self test ', test_case_id: 'c1', environment_id: 'e1', model: 'EM-340', labels: 'type=meter' };

  it('makes the request body', () => {
    const { value, errors } = healthCheckPayload({ ...filled, every_runs: '5' });
    expect(errors).toEqual({});
    expect(value).toEqual({
      name: 'self test',
      test_case_id: 'c1',
      environment_id: 'e1',
      model: 'EM-340',
      labels: { type: 'meter' },
      every_hours: 24,
      every_runs: 5,
      after_service: true,
    });
  });

  it('says what is missing or wrong, by field', () => {
    const { errors } = healthCheckPayload({ ...emptyHealthCheckForm(), every_hours: '0', every_runs: '2.5' });
    expect(Object.keys(errors).sort()).toEqual(['environment_id', 'every_hours', 'every_runs', 'model', 'name', 'test_case_id']);
    const never = healthCheckPayload({ ...filled, every_hours: '', after_service: false });
    expect(never.errors.every_hours).toEqual(['Say when it runs.']);
  });
});
