import { describe, expect, it } from 'vitest';
import { criterionText, guidesOf, limitsOf, outcomeLabel, seriesPlot } from './series';
import type { Criterion, Measurement } from './types';

const measured = (over: Partial<Measurement> = {}): Measurement => ({
  metric: 'voltage',
  condition: 'between',
  threshold: null,
  unit: 'V',
  value: 251,
  passed: true,
  outcome: 'marginal',
  samples: [
    [0, 230],
    [1.5, 251],
    [3, 240],
  ],
  ...over,
});

describe('series plots', () => {
  it('draws a range by both ends and the marginal band dashed', () => {
    const between: Criterion = { metric: 'voltage', condition: 'between', min: 207, max: 253, unit: 'V', marginal: { min: 250, max: null } };
    const plot = seriesPlot(measured(), [{ metric: 'voltage', condition: '<', threshold: 1, unit: '' }, between])!;
    expect(plot.t).toEqual([0, 1.5, 3]);
    expect(plot.values).toEqual([230, 251, 240]);
    expect(plot.guides.map((g) => [g.kind, g.value])).toEqual([
      ['limit', 207],
      ['limit', 253],
      ['marginal', 250],
    ]);
  });

  it('draws within_percent as nominal ± the percentage, and a threshold as one line', () => {
    const within = limitsOf({ metric: 'f', condition: 'within_percent', nominal: -50, percent: 2, unit: 'Hz' });
    expect(within.map((g) => g.value)).toEqual([-51, -49]);
    expect(guidesOf({ metric: 'p', condition: '<=', threshold: 2, unit: 'W' })).toEqual([{ label: '<= 2 W', value: 2, kind: 'limit' }]);
  });

  it('plots nothing without a series (a single value is in the table)', () => {
    expect(seriesPlot(measured({ samples: [[0, 1]] }), [])).toBeNull();
    expect(seriesPlot(measured({ samples: undefined }), [])).toBeNull();
    expect(seriesPlot(measured(), [])!.guides).toEqual([]);
  });

  it('names each outcome, an inconclusive one by its reason', () => {
    expect(outcomeLabel(measured())).toEqual({ text: 'marginal', tone: 'note' });
    expect(outcomeLabel(measured({ outcome: 'inconclusive', passed: null, reason: 'unit mV differs from criterion unit V' })).text).toBe(
      'unit mV differs from criterion unit V',
    );
    // answers of an older server have no outcome: passed decides
    expect(outcomeLabel(measured({ outcome: undefined, passed: false })).tone).toBe('bad');
    expect(outcomeLabel(measured({ outcome: undefined, passed: null })).text).toBe('not measured');
  });
});

describe('criteria in words', () => {
  it('says each kind, the statistic and the band', () => {
    expect(criterionText({ metric: 'p', condition: '<', threshold: 2, unit: 'W' })).toBe('p < 2 W');
    expect(criterionText({ metric: 'v', condition: 'between', min: 207, max: 253, unit: 'V', of: 'max', marginal: { min: 250, max: null } })).toBe(
      'v between 207 and 253 V (max of samples) · marginal 250 to …',
    );
    expect(criterionText({ metric: 'f', condition: 'within_percent', nominal: 50, percent: 0.2, unit: '' })).toBe('f within 0.2 % of 50');
  });
});
