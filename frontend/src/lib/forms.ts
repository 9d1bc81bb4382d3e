// Form logic kept out of the components so it can be tested on its own: editable rows for
// key–value maps and criteria, and the payloads they turn into. Client-side problems use the
// same dotted field paths as the API's errors (`criteria.0.threshold`), so one piece of markup
// shows both.

import type { FieldErrors } from './api';
import type { Condition, Criterion, Statistic, TestCase, TestCaseWrite } from './types';
import { CONDITIONS, STATISTICS } from './types';

export interface KeyValueRow {
  key: string;
  value: string;
}

/** A criterion as typed: numbers as text; only the ones its condition uses are read. */
export interface CriterionRow {
  metric: string;
  condition: Condition;
  threshold: string;
  unit: string;
  min?: string;
  max?: string;
  nominal?: string;
  percent?: string;
  of?: Statistic;
  marginalMin?: string;
  marginalMax?: string;
}

export interface Parsed<T> {
  value: T;
  errors: FieldErrors;
}

function add(errors: FieldErrors, field: string, message: string): void {
  (errors[field] ??= []).push(message);
}

export function hasErrors(errors: FieldErrors): boolean {
  return Object.keys(errors).length > 0;
}

/** A parameter typed as text: JSON literals (numbers, booleans, null, lists, objects) keep their type. */
export function parseParameterValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  if (/^(-?\d|true$|false$|null$|\[|\{|")/.test(trimmed)) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return text;
    }
  }
  return text;
}

/** The inverse of parseParameterValue: what to put in the text box for a stored value. */
export function formatParameterValue(value: unknown): string {
  if (typeof value === 'string') {
    // A string that would read back as another type is shown quoted, so it stays a string.
    return parseParameterValue(value) === value ? value : JSON.stringify(value);
  }
  return JSON.stringify(value);
}

export function rowsFromRecord(record: Record<string, unknown>, typed = false): KeyValueRow[] {
  return Object.entries(record ?? {}).map(([key, value]) => ({
    key,
    value: typed ? formatParameterValue(value) : String(value),
  }));
}

/**
 * Rows → object. Blank rows are ignored; a value without a key and a repeated key are errors
 * reported on `${field}.${row}.key`. With `typed`, values are parsed as parameters.
 */
export function recordFromRows(
  rows: KeyValueRow[],
  field: string,
  typed = false,
): Parsed<Record<string, unknown>> {
  const value: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  rows.forEach((row, index) => {
    const key = row.key.trim();
    if (!key && !row.value.trim()) return;
    if (!key) {
      add(errors, `${field}.${index}.key`, 'Give this value a name.');
      return;
    }
    if (Object.prototype.hasOwnProperty.call(value, key)) {
      add(errors, `${field}.${index}.key`, `"${key}" appears twice.`);
      return;
    }
    value[key] = typed ? parseParameterValue(row.value) : row.value;
  });
  return { value, errors };
}

export function stringRecordFromRows(rows: KeyValueRow[], field: string): Parsed<Record<string, string>> {
  return recordFromRows(rows, field, false) as Parsed<Record<string, string>>;
}

export function emptyCriterionRow(): CriterionRow {
  return { metric: '', condition: '<=', threshold: '', unit: '', min: '', max: '', nominal: '', percent: '', of: 'final', marginalMin: '', marginalMax: '' };
}

/** The numbers each condition needs, by the name the API gives them. */
export function numbersOf(condition: Condition): ('threshold' | 'min' | 'max' | 'nominal' | 'percent')[] {
  if (condition === 'between') return ['min', 'max'];
  if (condition === 'within_percent') return ['nominal', 'percent'];
  return ['threshold'];
}

function numberText(value: number | null | undefined): string {
  return value === null || value === undefined ? '' : String(value);
}

export function criterionRows(criteria: Criterion[]): CriterionRow[] {
  return criteria.map((c) => ({
    metric: c.metric,
    condition: c.condition,
    threshold: numberText(c.threshold),
    unit: c.unit ?? '',
    min: numberText(c.min),
    max: numberText(c.max),
    nominal: numberText(c.nominal),
    percent: numberText(c.percent),
    of: c.of ?? 'final',
    marginalMin: numberText(c.marginal?.min),
    marginalMax: numberText(c.marginal?.max),
  }));
}

/** '' → null (not given); otherwise the number, or NaN when it is none (a decimal comma is fine). */
function typedNumber(text: string | undefined): number | null {
  const trimmed = (text ?? '').trim().replace(',', '.');
  return trimmed === '' ? null : Number(trimmed);
}

export function criteriaFromRows(rows: CriterionRow[]): Parsed<Criterion[]> {
  const errors: FieldErrors = {};
  const criteria: Criterion[] = [];
  rows.forEach((row, index) => {
    const base = `criteria.${index}`;
    const typed = [row.threshold, row.min, row.max, row.nominal, row.percent, row.unit, row.marginalMin, row.marginalMax];
    const blank = !row.metric.trim() && typed.every((t) => !(t ?? '').trim());
    if (blank && rows.length > 1) return;
    const metric = row.metric.trim();
    if (!metric) add(errors, `${base}.metric`, 'Name the metric to measure.');
    if (!CONDITIONS.includes(row.condition)) add(errors, `${base}.condition`, 'Pick a condition.');
    const criterion: Criterion = { metric, condition: row.condition, unit: row.unit.trim() };
    for (const name of numbersOf(row.condition)) {
      const value = typedNumber(row[name]);
      if (value === null || !Number.isFinite(value)) add(errors, `${base}.${name}`, 'Enter a number.');
      criterion[name] = value;
    }
    if (row.condition === 'between' && criterion.min! > criterion.max!) {
      add(errors, `${base}.max`, 'Must not be below the minimum.');
    }
    if (row.condition === 'within_percent' && criterion.percent! <= 0) {
      add(errors, `${base}.percent`, 'Must be more than 0 %.');
    }
    const of = row.of ?? 'final';
    if (!STATISTICS.includes(of)) add(errors, `${base}.of`, 'Pick what of the samples to judge.');
    if (of !== 'final') criterion.of = of;
    const low = typedNumber(row.marginalMin);
    const high = typedNumber(row.marginalMax);
    for (const [name, value] of [['min', low], ['max', high]] as const) {
      if (value !== null && !Number.isFinite(value)) add(errors, `${base}.marginal.${name}`, 'Enter a number or leave it empty.');
    }
    if (low !== null && high !== null && low > high) add(errors, `${base}.marginal.max`, 'Must not be below the band\'s minimum.');
    if (low !== null || high !== null) criterion.marginal = { min: low, max: high };
    criteria.push(criterion);
  });
  if (criteria.length === 0 && !hasErrors(errors)) add(errors, 'criteria', 'Add at least one criterion.');
  return { value: criteria, errors };
}

export function tagsFromText(text: string): string[] {
  const tags: string[] = [];
  for (const part of text.split(',')) {
    const tag = part.trim();
    if (tag && !tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

export interface TestCaseForm {
  name: string;
  description: string;
  criteria: CriterionRow[];
  duration_s: string | number;
  timeout_s: string | number;
  parameters: KeyValueRow[];
  tags: string;
}

export function testCaseForm(testCase?: TestCase): TestCaseForm {
  if (!testCase) {
    return {
      name: '',
      description: '',
      criteria: [emptyCriterionRow()],
      duration_s: '60',
      timeout_s: '300',
      parameters: [],
      tags: '',
    };
  }
  return {
    name: testCase.name,
    description: testCase.description,
    criteria: criterionRows(testCase.criteria),
    duration_s: String(testCase.duration_s),
    timeout_s: String(testCase.timeout_s),
    parameters: rowsFromRecord(testCase.default_parameters, true),
    tags: testCase.tags.join(', '),
  };
}

function wholeSeconds(input: string | number | null, field: string, errors: FieldErrors): number {
  // A number input bound with bind:value hands over a number (or null when empty).
  const text = input === null || input === undefined ? '' : String(input).trim();
  const value = Number(text);
  if (text === '' || !Number.isInteger(value) || value < 0) {
    add(errors, field, 'Enter a whole number of seconds (0 or more).');
  } else if (value > 604800) {
    add(errors, field, 'At most 604800 s (7 days).');
  }
  return value;
}

export function testCasePayload(form: TestCaseForm): Parsed<TestCaseWrite> {
  const errors: FieldErrors = {};
  const name = form.name.trim();
  if (!name) add(errors, 'name', 'Give the test case a name.');
  const criteria = criteriaFromRows(form.criteria);
  Object.assign(errors, criteria.errors);
  const duration_s = wholeSeconds(form.duration_s, 'duration_s', errors);
  const timeout_s = wholeSeconds(form.timeout_s, 'timeout_s', errors);
  if (!errors.duration_s && !errors.timeout_s && timeout_s > 0 && timeout_s < duration_s) {
    add(errors, 'timeout_s', 'The timeout should not be shorter than the duration.');
  }
  const parameters = recordFromRows(form.parameters, 'default_parameters', true);
  Object.assign(errors, parameters.errors);
  return {
    value: {
      name,
      description: form.description.trim(),
      criteria: criteria.value,
      duration_s,
      timeout_s,
      default_parameters: parameters.value,
      tags: tagsFromText(form.tags),
    },
    errors,
  };
}

/** Default parameters of several test cases merged in order (later ones win), for a run form. */
export function mergedDefaults(cases: { default_parameters: Record<string, unknown> }[]): Record<string, unknown> {
  return Object.assign({}, ...cases.map((c) => c.default_parameters));
}

/** `type=dongle, radio` → {type: 'dongle', radio: ''}; errors on empty keys. */
export function labelsFromText(text: string): Parsed<Record<string, string>> {
  const value: Record<string, string> = {};
  const errors: FieldErrors = {};
  for (const part of text.split(/[,\n]/)) {
    const item = part.trim();
    if (!item) continue;
    const at = item.search(/[=:]/);
    const key = (at === -1 ? item : item.slice(0, at)).trim();
    const val = at === -1 ? '' : item.slice(at + 1).trim();
    if (!key) add(errors, 'labels', `"${item}" has no label name.`);
    else value[key] = val;
  }
  return { value, errors };
}

export function labelsToText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => (v ? `${k}=${v}` : k))
    .join(', ');
}

/** The first problem with `name` (exact field, or the first of its nested fields). */
export function fieldMessage(errors: FieldErrors, name: string): string | undefined {
  if (errors[name]?.length) return errors[name][0];
  const nested = Object.keys(errors).find((key) => key.startsWith(name + '.'));
  return nested ? errors[nested][0] : undefined;
}

export function errorId(name: string): string {
  return `error-${name.replace(/[^a-zA-Z0-9_-]/g, '-')}`;
}

/** aria attributes for an input: marked invalid and pointing at its message when it has one. */
export function fieldAttrs(errors: FieldErrors, name: string): Record<string, string | undefined> {
  const message = fieldMessage(errors, name);
  return {
    'aria-invalid': message ? 'true' : undefined,
    'aria-describedby': message ? errorId(name) : undefined,
  };
}

/**
 * The problems left once the fields whose messages have these ids (`errorId`) were edited: a
 * field's own problems, and those of the fields nested in it (a group of checkboxes or rows
 * points at the message of the whole group).
 */
export function withoutEditedFields(errors: FieldErrors, messageIds: string[]): FieldErrors {
  if (messageIds.length === 0) return errors;
  const ids = new Set(messageIds);
  const edited = (field: string) => {
    const parts = field.split('.');
    return parts.some((_, end) => ids.has(errorId(parts.slice(0, end + 1).join('.'))));
  };
  return Object.fromEntries(Object.entries(errors).filter(([field]) => !edited(field)));
}

/** Field problems not covered by any of the fields a form shows. */
export function unshownErrors(errors: FieldErrors, shown: string[]): string[] {
  return Object.entries(errors)
    .filter(([field]) => !shown.some((s) => field === s || field.startsWith(s + '.')))
    .map(([field, messages]) => `${field.replace(/^_/, '').replace(/_/g, ' ')}: ${messages.join(' ')}`);
}
