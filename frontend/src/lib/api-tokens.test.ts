import { describe, expect, it } from 'vitest';
import { curlExample, defaultExpiry, expiryChoices, expiryLabel, splitAccounts, tokenState } from './api-tokens';
import type { User } from './types';

const DAY = 24 * 3600 * 1000;
const now = Date.parse('2026-12-01T09:00:00Z');

describe('expiry choices', () => {
  it('offer common lifetimes up to the server maximum, and never only where allowed', () => {
    expect(expiryChoices({ max_days: 90, allow_no_expiry: false })).toEqual([7, 30, 60, 90]);
    expect(expiryChoices({ max_days: 45, allow_no_expiry: true })).toEqual([7, 30, 45, null]);
    expect(expiryChoices({ max_days: 3, allow_no_expiry: false })).toEqual([3]);
  });

  it('default to 30 days, or the maximum when shorter', () => {
    expect(defaultExpiry({ max_days: 90, allow_no_expiry: false })).toBe(30);
    expect(defaultExpiry({ max_days: 14, allow_no_expiry: false })).toBe(14);
  });

  it('read as words', () => {
    expect([expiryLabel(1), expiryLabel(30), expiryLabel(null)]).toEqual(['1 day', '30 days', 'never']);
  });
});

describe('token state', () => {
  const at = (ms: number) => new Date(now + ms).toISOString();
  it('is expired at its expiry, expiring within a week before, else active', () => {
    expect(tokenState({ expires_at: at(-1) }, now)).toBe('expired');
    expect(tokenState({ expires_at: at(0) }, now)).toBe('expired');
    expect(tokenState({ expires_at: at(3 * DAY) }, now)).toBe('expiring');
    expect(tokenState({ expires_at: at(30 * DAY) }, now)).toBe('active');
    expect(tokenState({ expires_at: null }, now)).toBe('active');
  });
});

describe('accounts', () => {
  it('split people from service accounts, keeping their order', () => {
    const users = [
      { id: '1', email: 'a@lab', name: 'A', role: 'admin' },
      { id: '2', email: 'ci@service.invalid', name: 'ci', role: 'engineer', service_account: true },
      { id: '3', email: 'b@lab', name: 'B', role: 'viewer', service_account: false },
    ] as User[];
    const { people, services } = splitAccounts(users);
    expect(people.map((u) => u.id)).toEqual(['1', '3']);
    expect(services.map((u) => u.id)).toEqual(['2']);
  });
});

it('shows how to call the API with a token', () => {
  expect(curlExample('dlp_x', 'https://lab.example')).toBe(
    'curl -H "Authorization: Bearer dlp_x" https://lab.example/api/test-runs',
  );
});
