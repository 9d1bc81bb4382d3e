// A measured series with the criterion it was judged against, as a plot draws it: the samples
// (t in seconds from the case's start) and horizontal lines for the threshold, or a range's
// two ends, and the marginal band's ends. Kept apart from the component so it can be tested.

import type { Criterion, Measurement } from './types';

export interface Guide {
  label: string;
  value: number;
  /** limit: where pass turns to fail; marginal: an end of the marginal band. */
  kind: 'limit' | 'marginal';
}

export interface SeriesPlot {
  metric: string;
  unit: string;
  t: number[];
  values: number[];
  guides: Guide[];
}

/** A criterion in words: `voltage between 207 and 253 V (max of samples)`. */
export function criterionText(c: Criterion): string {
  const unit = c.unit ? ` ${c.unit}` : '';
  let text: string;
  if (c.condition === 'between') text = `${c.metric} between ${c.min} and ${c.max}${unit}`;
  else if (c.condition === 'within_percent') text = `${c.metric} within ${c.percent} % of ${c.nominal}${unit}`;
  else text = `${c.metric} ${c.condition} ${c.threshold}${unit}`;
  if (c.of && c.of !== 'final') text += ` (${c.of} of samples)`;
  if (c.marginal) text += ` · marginal ${c.marginal.min ?? '…'} to ${c.marginal.max ?? '…'}`;
  return text;
}

/** The pass region's ends of a criterion: one threshold, or both ends of a range. */
export function limitsOf(criterion: Criterion): Guide[] {
  const unit = criterion.unit ? ` ${criterion.unit}` : '';
  if (criterion.condition === 'between' && criterion.min != null && criterion.max != null) {
    return [
      { label: `min ${criterion.min}${unit}`, value: criterion.min, kind: 'limit' },
      { label: `max ${criterion.max}${unit}`, value: criterion.max, kind: 'limit' },
    ];
  }
  if (criterion.condition === 'within_percent' && criterion.nominal != null && criterion.percent != null) {
    const spread = (Math.abs(criterion.nominal) * criterion.percent) / 100;
    return [
      { label: `−${criterion.percent} %`, value: criterion.nominal - spread, kind: 'limit' },
      { label: `+${criterion.percent} %`, value: criterion.nominal + spread, kind: 'limit' },
    ];
  }
  if (criterion.threshold != null) {
    return [{ label: `${criterion.condition} ${criterion.threshold}${unit}`, value: criterion.threshold, kind: 'limit' }];
  }
  return [];
}

export function guidesOf(criterion: Criterion): Guide[] {
  const band = criterion.marginal;
  const ends: Guide[] = [];
  if (band?.min != null) ends.push({ label: `marginal from ${band.min}`, value: band.min, kind: 'marginal' });
  if (band?.max != null) ends.push({ label: `marginal to ${band.max}`, value: band.max, kind: 'marginal' });
  return [...limitsOf(criterion), ...ends];
}

/**
 * The plot of one measurement; null without at least two samples (a single value is shown in
 * the table). The criterion is the run's snapshot of it: the first of the case's criteria on
 * the metric with the same condition.
 */
export function seriesPlot(measurement: Measurement, criteria: Criterion[]): SeriesPlot | null {
  const samples = measurement.samples ?? [];
  if (samples.length < 2) return null;
  const criterion = criteria.find((c) => c.metric === measurement.metric && c.condition === measurement.condition);
  return {
    metric: measurement.metric,
    unit: measurement.unit,
    t: samples.map(([t]) => t),
    values: samples.map(([, v]) => v),
    guides: criterion ? guidesOf(criterion) : [],
  };
}

/** What a measurement's outcome is called in the results table. */
export function outcomeLabel(measurement: Measurement): { text: string; tone: 'ok' | 'bad' | 'warn' | 'note' } {
  const outcome = measurement.outcome ?? (measurement.passed === true ? 'pass' : measurement.passed === false ? 'fail' : 'inconclusive');
  if (outcome === 'pass') return { text: 'pass', tone: 'ok' };
  if (outcome === 'marginal') return { text: 'marginal', tone: 'note' };
  if (outcome === 'fail') return { text: 'fail', tone: 'bad' };
  return { text: measurement.reason || 'not measured', tone: 'warn' };
}
