import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import TestCaseEdit from './TestCaseEdit.svelte';
import { session } from '../lib/session.svelte';

let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
  session.mode = 'open'; // everyone may edit, as on a server without the auth service
});
afterEach(() => vi.unstubAllGlobals());

const type = (label: string, value: string) => fireEvent.input(screen.getByLabelText(label, { exact: true }), { target: { value } });

describe('the test case form', () => {
  it('is read-only for a viewer', async () => {
    session.mode = 'required';
    session.user = { id: 'u', email: 'v@lab.test', name: 'V', role: 'viewer' };
    render(TestCaseEdit, { props: {} });
    expect(await screen.findByText(/may look at test cases but not change them/)).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Create test case' })).toBeNull();
    expect(screen.getByLabelText('Name', { exact: true }).closest('fieldset')?.disabled).toBe(true);
  });

  it('marks missing fields, criteria rows included, without calling the server', async () => {
    render(TestCaseEdit, { props: {} });
    await fireEvent.click(await screen.findByRole('button', { name: 'Create test case' }));
    expect(await screen.findByText('Please correct the marked fields.')).toBeTruthy();
    expect(screen.getByLabelText('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByLabelText('Metric 1').getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByLabelText('Threshold 1').getAttribute('aria-invalid')).toBe('true');
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('adds and removes criteria rows and sends what was entered', async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify({ id: 'tc9', name: 'Quick', version: 1 }), { status: 201 }));
    render(TestCaseEdit, { props: {} });
    await type('Name', 'Quick');
    await type('Metric 1', 'energy_error_pct');
    await type('Threshold 1', '0.5');
    await fireEvent.click(screen.getByRole('button', { name: '+ Add criterion' }));
    await type('Metric 2', 'to be removed');
    await fireEvent.click(screen.getByRole('button', { name: '+ Add criterion' }));
    await type('Metric 3', 'latency_ms');
    await fireEvent.change(screen.getByLabelText('Condition 3'), { target: { value: '<' } });
    await type('Threshold 3', '2000');
    await fireEvent.click(screen.getByRole('button', { name: 'Remove criterion 2' }));
    await fireEvent.click(screen.getByRole('button', { name: '+ Add parameter' }));
    await type('Parameter 1', 'load_kw');
    await type('Value 1', '2.5');
    await type('Tags', 'smoke, accuracy');
    await fireEvent.click(screen.getByRole('button', { name: 'Create test case' }));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/api/test-cases');
    expect(JSON.parse(init.body)).toEqual({
      name: 'Quick',
      description: '',
      criteria: [
        { metric: 'energy_error_pct', condition: '<=', threshold: 0.5, unit: '' },
        { metric: 'latency_ms', condition: '<', threshold: 2000, unit: '' },
      ],
      duration_s: 60,
      timeout_s: 300,
      default_parameters: { load_kw: 2.5 },
      tags: ['smoke', 'accuracy'],
    });
  });

  it('puts the server’s answer next to the criterion it is about', async () => {
    fetchMock.mockResolvedValue(
      new Response(
        JSON.stringify({
          code: 'validation_error',
          message: 'criteria: invalid',
          errors: { criteria: { '0': { metric: ['Length must be between 1 and 200.'] } } },
        }),
        { status: 422 },
      ),
    );
    render(TestCaseEdit, { props: {} });
    await type('Name', 'Quick');
    await type('Metric 1', 'x'.repeat(201));
    await type('Threshold 1', '1');
    await fireEvent.click(screen.getByRole('button', { name: 'Create test case' }));
    expect(await screen.findByText('Length must be between 1 and 200.')).toBeTruthy();
    expect(screen.getByLabelText('Metric 1').getAttribute('aria-invalid')).toBe('true');
  });
});
