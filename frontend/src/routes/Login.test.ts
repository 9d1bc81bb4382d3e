import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import Login from './Login.svelte';
import { session } from '../lib/session.svelte';

function reply(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
  localStorage.clear();
});
afterEach(() => vi.unstubAllGlobals());

async function logIn(email: string, password: string) {
  await fireEvent.input(screen.getByLabelText('Email'), { target: { value: email } });
  await fireEvent.input(screen.getByLabelText('Password'), { target: { value: password } });
  await fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
}

describe('Login', () => {
  it('asks for what is missing before calling the server', async () => {
    render(Login);
    await fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    expect(await screen.findByText('Enter your email address.')).toBeTruthy();
    expect(screen.getByLabelText('Email').getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText('Enter your password.')).toBeTruthy();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('says the same thing for a wrong email or password', async () => {
    fetchMock.mockResolvedValue(reply(401, { code: 'invalid_credentials', message: 'invalid email or password', errors: {} }));
    render(Login);
    await logIn('ada@lab.test', 'wrong-password');
    expect((await screen.findByRole('alert')).textContent).toContain('Wrong email or password.');
    expect((screen.getByLabelText('Password') as HTMLInputElement).value).toBe('');
  });

  it('shows the server’s field message next to the field', async () => {
    fetchMock.mockResolvedValue(
      reply(422, { code: 'validation_error', message: 'email: Not a valid email address.', errors: { email: ['Not a valid email address.'] } }),
    );
    render(Login);
    await logIn('not-an-email', 'whatever-long');
    const message = await screen.findByText('Not a valid email address.');
    expect(message.id).toBe('error-email');
    expect(screen.getByLabelText('Email').getAttribute('aria-describedby')).toBe('error-email');
  });

  it('tells how long to wait when rate limited', async () => {
    fetchMock.mockResolvedValue(reply(429, { code: 'too_many_requests', message: 'slow down', errors: {} }, { 'Retry-After': '60' }));
    render(Login);
    await logIn('ada@lab.test', 'pw-pw-pw-pw');
    expect((await screen.findByRole('alert')).textContent).toContain('Try again in 60 seconds.');
  });

  it('keeps the token and user of a successful login', async () => {
    fetchMock.mockResolvedValue(
      reply(200, {
        token: 'tok-1',
        token_type: 'Bearer',
        expires_at: '2026-12-01T00:00:00Z',
        user: { id: 'u1', email: 'ada@lab.test', name: 'Ada', role: 'engineer' },
      }),
    );
    render(Login);
    await logIn(' ada@lab.test ', 'correct horse');
    await vi.waitFor(() => expect(session.user?.name).toBe('Ada'));
    expect(JSON.parse(fetchMock.mock.calls[0][1].body)).toEqual({ email: 'ada@lab.test', password: 'correct horse' });
    expect(localStorage.getItem('devicelab.token')).toBe('tok-1');
    expect(session.role).toBe('engineer');
    expect(session.can('runs.start')).toBe(true);
    expect(session.can('devices.manage')).toBe(false);
  });
});
