import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import TestCaseEdit from '../../routes/TestCaseEdit.svelte';
import { session } from '../session.svelte';
import type { TestCase } from '../types';

let fetchMock: ReturnType<typeof vi.fn>;

const measured: TestCase = {
  id: 'tc1',
  name: 'Voltage under load',
  description: '',
  criteria: [{ metric: 'voltage', condition: '<=', threshold: 240, unit: 'V' }],
  duration_s: 30,
  timeout_s: 120,
  default_parameters: { load_kw: 2.5 },
  tags: [],
  execution: { executor: 'command', command: ['/opt/lab/bin/measure', '--mode', 'load'], per_device: false },
  version: 4,
  created_at: '2026-12-01T08:00:00+00:00',
  updated_at: '2026-12-01T08:00:00+00:00',
};

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status });

function signIn(role: 'admin' | 'engineer') {
  session.mode = 'required';
  session.user = { id: 'u', email: `${role}@lab.test`, name: role, role };
}

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const sentBodies = () =>
  fetchMock.mock.calls.filter(([, init]) => init?.method === 'PATCH' || init?.method === 'POST').map(([, init]) => JSON.parse(init.body));

describe('the execution of a test case', () => {
  it('is read-only for an engineer, who still saves the rest without it', async () => {
    signIn('engineer');
    fetchMock.mockImplementation(async (_url: string, init?: RequestInit) =>
      init?.method === 'PATCH' ? json({ ...measured, version: 5 }) : json(measured),
    );
    render(TestCaseEdit, { props: { id: 'tc1' } });

    const command = await screen.findByRole('list', { name: 'Command' });
    expect([...command.querySelectorAll('li')].map((li) => li.textContent)).toEqual(['/opt/lab/bin/measure', '--mode', 'load']);
    expect(screen.getByText('Runs once for all the run’s devices.')).toBeTruthy();
    expect(screen.getByText('Only admins change how a test case is executed.')).toBeTruthy();
    expect(screen.queryByRole('radiogroup', { name: 'Executor' })).toBeNull();
    expect(screen.queryByLabelText('Program')).toBeNull();

    await fireEvent.input(screen.getByLabelText('Description'), { target: { value: 'longer' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save changes' }));
    await vi.waitFor(() => expect(sentBodies()).toHaveLength(1));
    expect(sentBodies()[0]).not.toHaveProperty('execution');
    expect(sentBodies()[0].description).toBe('longer');
  });

  it('is edited by an admin: the program, its arguments and once per device', async () => {
    signIn('admin');
    fetchMock.mockImplementation(async (_url: string, init?: RequestInit) =>
      init?.method === 'PATCH' ? json({ ...measured, version: 5 }) : json(measured),
    );
    render(TestCaseEdit, { props: { id: 'tc1' } });

    const program = await screen.findByLabelText('Program');
    expect((program as HTMLInputElement).value).toBe('/opt/lab/bin/measure');
    await fireEvent.click(screen.getByRole('button', { name: 'Remove argument 2' }));
    await fireEvent.input(screen.getByLabelText('Argument 1'), { target: { value: '--quick' } });
    await fireEvent.click(screen.getByRole('button', { name: '+ Add argument' }));
    await fireEvent.input(screen.getByLabelText('Argument 2'), { target: { value: 'bench 3' } });
    await fireEvent.click(screen.getByRole('switch'));
    await fireEvent.click(screen.getByRole('button', { name: 'Save changes' }));

    await vi.waitFor(() => expect(sentBodies()).toHaveLength(1));
    expect(sentBodies()[0].execution).toEqual({
      executor: 'command',
      command: ['/opt/lab/bin/measure', '--quick', 'bench 3'],
      per_device: true,
    });
  });

  it('needs a program for the command executor before anything is sent', async () => {
    signIn('admin');
    render(TestCaseEdit, { props: {} });
    await fireEvent.input(screen.getByLabelText('Name', { exact: true }), { target: { value: 'Quick' } });
    await fireEvent.input(screen.getByLabelText('Metric 1'), { target: { value: 'voltage' } });
    await fireEvent.input(screen.getByLabelText('Threshold 1'), { target: { value: '240' } });
    await fireEvent.click(screen.getByLabelText(/^command —/));
    await fireEvent.click(screen.getByRole('button', { name: 'Create test case' }));

    expect(await screen.findByText(/Give the program to run/)).toBeTruthy();
    expect(screen.getByLabelText('Program').getAttribute('aria-invalid')).toBe('true');
    expect(fetchMock).not.toHaveBeenCalled();

    fetchMock.mockResolvedValue(json({ ...measured, id: 'tc2', name: 'Quick', version: 1 }, 201));
    await fireEvent.input(screen.getByLabelText('Program'), { target: { value: '/opt/lab/bin/quick' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create test case' }));
    await vi.waitFor(() => expect(sentBodies()).toHaveLength(1));
    expect(sentBodies()[0].execution).toEqual({ executor: 'command', command: ['/opt/lab/bin/quick'], per_device: true });
  });
});
