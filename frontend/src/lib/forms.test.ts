import { describe, expect, it } from 'vitest';
import {
  criteriaFromRows,
  criterionRows,
  errorId,
  emptyCriterionRow,
  fieldAttrs,
  fieldMessage,
  formatParameterValue,
  labelsFromText,
  mergedDefaults,
  parseParameterValue,
  recordFromRows,
  rowsFromRecord,
  tagsFromText,
  testCaseForm,
  testCasePayload,
  unshownErrors,
  withoutEditedFields,
} from './forms';
import type { Criterion, TestCase } from './types';

describe('parameter values', () => {
  it('keeps JSON literals typed and everything else text', () => {
    expect(parseParameterValue('2.5')).toBe(2.5);
    expect(parseParameterValue('-3')).toBe(-3);
    expect(parseParameterValue('true')).toBe(true);
    expect(parseParameterValue('null')).toBeNull();
    expect(parseParameterValue('[1, 2]')).toEqual([1, 2]);
    expect(parseParameterValue('{"a": 1}')).toEqual({ a: 1 });
    expect(parseParameterValue('"42"')).toBe('42');
    expect(parseParameterValue('lab-wifi')).toBe('lab-wifi');
    expect(parseParameterValue('1.2.3')).toBe('1.2.3');
    expect(parseParameterValue('{broken')).toBe('{broken');
  });

  it('round-trips through the text box', () => {
    for (const value of [2.5, true, null, 'text', '42', 'true', [1, 'a'], { k: 'v' }]) {
      expect(parseParameterValue(formatParameterValue(value))).toEqual(value);
    }
  });
});

describe('key–value rows', () => {
  it('turns rows into a map, skipping blank rows', () => {
    const rows = [
      { key: 'load_kw', value: '2.5' },
      { key: '', value: '' },
      { key: 'mode', value: 'eco' },
    ];
    expect(recordFromRows(rows, 'default_parameters', true)).toEqual({ value: { load_kw: 2.5, mode: 'eco' }, errors: {} });
    expect(recordFromRows(rows, 'variables').value).toEqual({ load_kw: '2.5', mode: 'eco' });
  });

  it('reports a value without a name and a repeated name on the row', () => {
    const { errors } = recordFromRows(
      [
        { key: 'a', value: '1' },
        { key: ' ', value: 'x' },
        { key: 'a', value: '2' },
      ],
      'variables',
    );
    expect(Object.keys(errors)).toEqual(['variables.1.key', 'variables.2.key']);
    expect(errors['variables.2.key'][0]).toMatch(/twice/);
  });

  it('makes rows from a map', () => {
    expect(rowsFromRecord({ a: 1, b: 'x' }, true)).toEqual([
      { key: 'a', value: '1' },
      { key: 'b', value: 'x' },
    ]);
  });
});

describe('criteria rows', () => {
  it('turns rows into criteria with numeric thresholds (a decimal comma too)', () => {
    const { value, errors } = criteriaFromRows([
      { metric: ' energy_error_pct ', condition: '<=', threshold: '0,5', unit: '%' },
      { metric: 'latency_ms', condition: '<', threshold: '2000', unit: 'ms' },
    ]);
    expect(errors).toEqual({});
    expect(value).toEqual([
      { metric: 'energy_error_pct', condition: '<=', threshold: 0.5, unit: '%' },
      { metric: 'latency_ms', condition: '<', threshold: 2000, unit: 'ms' },
    ]);
  });

  it('marks the metric and threshold of an incomplete row', () => {
    const { errors } = criteriaFromRows([{ metric: '', condition: '>', threshold: 'abc', unit: '' }]);
    expect(Object.keys(errors).sort()).toEqual(['criteria.0.metric', 'criteria.0.threshold']);
  });

  it('reads the numbers each condition needs, the statistic and the marginal band', () => {
    const { value, errors } = criteriaFromRows([
      { ...emptyCriterionRow(), metric: 'voltage', condition: 'between', min: '207', max: '253', unit: 'V', of: 'max', marginalMin: '250' },
      { ...emptyCriterionRow(), metric: 'f', condition: 'within_percent', nominal: '50', percent: '0,2', threshold: 'ignored' },
    ]);
    expect(errors).toEqual({});
    expect(value).toEqual([
      { metric: 'voltage', condition: 'between', min: 207, max: 253, unit: 'V', of: 'max', marginal: { min: 250, max: null } },
      { metric: 'f', condition: 'within_percent', nominal: 50, percent: 0.2, unit: '' },
    ]);
  });

  it('refuses a range upside down, a percentage of 0, and a band upside down', () => {
    const { errors } = criteriaFromRows([
      { ...emptyCriterionRow(), metric: 'a', condition: 'between', min: '5', max: '1' },
      { ...emptyCriterionRow(), metric: 'b', condition: 'within_percent', nominal: '1', percent: '0' },
      { ...emptyCriterionRow(), metric: 'c', condition: '<', threshold: '1', marginalMin: '3', marginalMax: '2' },
      { ...emptyCriterionRow(), metric: 'd', condition: 'between', min: '', max: 'x' },
    ]);
    expect(Object.keys(errors).sort()).toEqual([
      'criteria.0.max',
      'criteria.1.percent',
      'criteria.2.marginal.max',
      'criteria.3.max',
      'criteria.3.min',
    ]);
  });

  it('shows a stored criterion of each kind in its row and back unchanged', () => {
    const stored: Criterion[] = [
      { metric: 'v', condition: 'between', min: 1, max: 2, unit: 'V', of: 'p95', marginal: { min: null, max: 1.2 } },
      { metric: 'p', condition: '<', threshold: 2, unit: 'W' },
    ];
    expect(criteriaFromRows(criterionRows(stored)).value).toEqual(stored);
  });

  it('ignores an extra blank row but not an only one', () => {
    expect(criteriaFromRows([{ metric: 'm', condition: '==', threshold: '0', unit: '' }, emptyCriterionRow()]).value).toHaveLength(1);
    expect(Object.keys(criteriaFromRows([emptyCriterionRow()]).errors)).toEqual(['criteria.0.metric', 'criteria.0.threshold']);
  });
});

describe('test case form', () => {
  const existing: TestCase = {
    id: 'tc1',
    name: 'Standby power',
    description: 'Own consumption',
    criteria: [{ metric: 'standby_power_w', condition: '<', threshold: 2, unit: 'W' }],
    duration_s: 20,
    timeout_s: 120,
    default_parameters: { load_kw: 0 },
    tags: ['power', 'smoke'],
    execution: { executor: '', command: [], per_device: true },
    version: 3,
    created_at: '',
    updated_at: '',
  };

  it('round-trips an existing test case', () => {
    const { value, errors } = testCasePayload(testCaseForm(existing));
    expect(errors).toEqual({});
    expect(value).toEqual({
      name: 'Standby power',
      description: 'Own consumption',
      criteria: existing.criteria,
      duration_s: 20,
      timeout_s: 120,
      default_parameters: { load_kw: 0 },
      tags: ['power', 'smoke'],
    });
  });

  it('accepts the numbers a number input binds', () => {
    const form = { ...testCaseForm(existing), duration_s: 2, timeout_s: 60 };
    expect(testCasePayload(form).value.duration_s).toBe(2);
  });

  it('reports every problem at once, each on its field', () => {
    const form = { ...testCaseForm(), name: ' ', duration_s: '1.5', timeout_s: '', criteria: [emptyCriterionRow()] };
    expect(Object.keys(testCasePayload(form).errors).sort()).toEqual([
      'criteria.0.metric',
      'criteria.0.threshold',
      'duration_s',
      'name',
      'timeout_s',
    ]);
  });

  it('refuses a timeout shorter than the duration', () => {
    const form = { ...testCaseForm(existing), duration_s: '60', timeout_s: '30' };
    expect(testCasePayload(form).errors.timeout_s).toBeDefined();
  });
});

describe('small helpers', () => {
  it('splits tags on commas without repeats', () => {
    expect(tagsFromText(' a, b,,a ,c ')).toEqual(['a', 'b', 'c']);
  });

  it('reads labels written as text', () => {
    expect(labelsFromText('type=dongle, radio:wifi, spare')).toEqual({ value: { type: 'dongle', radio: 'wifi', spare: '' }, errors: {} });
    expect(labelsFromText('=x').errors.labels).toHaveLength(1);
  });

  it('merges default parameters, later test cases winning', () => {
    expect(mergedDefaults([{ default_parameters: { a: 1, b: 1 } }, { default_parameters: { b: 2 } }])).toEqual({ a: 1, b: 2 });
  });


  it('finds a field’s message, its own or a nested one, and marks the input', () => {
    const errors = { name: ['taken'], 'criteria.1.threshold': ['Enter a number.'], _schema: ['odd'] };
    expect(fieldMessage(errors, 'criteria')).toBe('Enter a number.');
    expect(fieldAttrs(errors, 'name')).toEqual({ 'aria-invalid': 'true', 'aria-describedby': 'error-name' });
    expect(fieldAttrs(errors, 'description')).toEqual({ 'aria-invalid': undefined, 'aria-describedby': undefined });
    expect(unshownErrors(errors, ['name', 'criteria'])).toEqual(['schema: odd']);
  });
});

describe('withoutEditedFields', () => {
  it('drops the edited fields and the fields nested in an edited group', () => {
    const errors = { name: ['a'], 'criteria.0.metric': ['b'], 'criteria.1.threshold': ['c'], tags: ['d'] };
    expect(withoutEditedFields(errors, [errorId('criteria.0.metric')])).toEqual({ name: ['a'], 'criteria.1.threshold': ['c'], tags: ['d'] });
    expect(withoutEditedFields(errors, [errorId('criteria'), errorId('tags')])).toEqual({ name: ['a'] });
    expect(withoutEditedFields(errors, ['why-device-7'])).toEqual(errors);
    expect(withoutEditedFields(errors, [])).toBe(errors);
  });
});
