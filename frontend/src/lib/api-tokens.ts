// API tokens (`dlp_…`) and service accounts: the auth service's endpoints for them, and what
// the Account and Users pages show of them. A token's secret is in the answer to its creation
// only; the UI shows it once and keeps it nowhere.

import { listAll, send } from './api';
import type { Role, User } from './types';

export type TokenScope = 'read' | 'run' | 'full';

export const SCOPES: { value: TokenScope; label: string; help: string }[] = [
  { value: 'read', label: 'read', help: 'see devices, test cases and runs' },
  { value: 'run', label: 'run', help: 'read, and start and cancel runs and holds' },
  { value: 'full', label: 'full', help: 'whatever the owner’s role may do' },
];

export interface ApiToken {
  id: string;
  user_id: string;
  name: string;
  scope: TokenScope;
  created_at: string;
  created_by: string;
  /** null: never expires */
  expires_at: string | null;
  /** recorded at most once a minute; null: never used */
  last_used_at: string | null;
}

export interface CreatedApiToken extends ApiToken {
  /** The token itself, shown once. */
  token: string;
}

export interface TokenPolicy {
  max_days: number;
  allow_no_expiry: boolean;
}

export interface NewToken {
  name: string;
  scope: TokenScope;
  /** null: no expiry (only where the server allows it) */
  expires_in_days: number | null;
  /** admins: make it for this service account */
  user_id?: string;
}

const id = encodeURIComponent;

export const apiTokens = {
  /** One's own tokens, or (admins) those of `userId`. */
  list: (userId?: string) => listAll<ApiToken>('/auth/tokens', { user_id: userId }),
  create: (token: NewToken) => send<CreatedApiToken>('POST', '/auth/tokens', { body: token }),
  revoke: (tokenId: string) => send<void>('DELETE', `/auth/tokens/${id(tokenId)}`),
  policy: () => send<TokenPolicy>('GET', '/auth/tokens/policy'),
};

export const serviceAccounts = {
  create: (account: { name: string; role: Role; email?: string }) =>
    send<User>('POST', '/auth/users', { body: { ...account, service_account: true } }),
};

/** The expiries a user picks from: common ones up to the server's maximum, the maximum itself,
 * and "never" where allowed. `null` stands for no expiry. */
export function expiryChoices(policy: TokenPolicy): (number | null)[] {
  const days = [7, 30, 60, 90, 180, 365].filter((d) => d < policy.max_days);
  const choices: (number | null)[] = [...days, policy.max_days];
  if (policy.allow_no_expiry) choices.push(null);
  return choices;
}

export function expiryLabel(days: number | null): string {
  if (days === null) return 'never';
  return days === 1 ? '1 day' : `${days} days`;
}

/** The default expiry choice: 30 days, or the maximum when that is shorter. */
export function defaultExpiry(policy: TokenPolicy): number {
  return Math.min(30, policy.max_days);
}

export type TokenState = 'active' | 'expiring' | 'expired';

const WEEK_MS = 7 * 24 * 3600 * 1000;

/** Whether a token still works: expired, expiring within a week, or active. */
export function tokenState(token: Pick<ApiToken, 'expires_at'>, now: number = Date.now()): TokenState {
  if (token.expires_at === null) return 'active';
  const end = new Date(token.expires_at).getTime();
  if (Number.isNaN(end)) return 'active';
  if (end <= now) return 'expired';
  return end - now <= WEEK_MS ? 'expiring' : 'active';
}

/** What a new token's owner is shown next to the secret: how to call the API with it. */
export function curlExample(token: string, origin: string): string {
  return `curl -H "Authorization: Bearer ${token}" ${origin}/api/test-runs`;
}

/** Service accounts first split from people, each group in the order given. */
export function splitAccounts(users: User[]): { people: User[]; services: User[] } {
  return {
    people: users.filter((u) => !u.service_account),
    services: users.filter((u) => u.service_account),
  };
}
