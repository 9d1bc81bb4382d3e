// Who is signed in, with which role, and what that role may do. The token lives in
// localStorage so a reload keeps the session; other tabs follow a logout through the
// `storage` event. When the server has no auth service (/auth answers 404), the UI runs in
// "open access" mode, as the API itself does then.

import { ApiError, auth, configureApi } from './api';
import type { Role, User } from './types';

const TOKEN_KEY = 'devicelab.token';
const USER_KEY = 'devicelab.user';

export type AuthMode = 'unknown' | 'required' | 'open' | 'unreachable';

export type Permission =
  | 'devices.manage' // add, edit, delete devices
  | 'devices.status' // set offline / back online
  | 'catalog.edit' // test cases and environments
  | 'runs.start'
  | 'runs.cancel'
  | 'users.manage'
  | 'executions.define' // what a test case executes on the runners
  | 'health.manage' // designate the health checks the worker runs
  | 'runners.manage'; // drain a runner and bring it back

const ALLOWED: Record<Role, Permission[]> = {
  admin: ['devices.manage', 'devices.status', 'catalog.edit', 'runs.start', 'runs.cancel', 'users.manage', 'executions.define', 'health.manage', 'runners.manage'],
  engineer: ['devices.status', 'catalog.edit', 'runs.start', 'runs.cancel'],
  viewer: [],
};

export function roleAllows(role: Role | null, permission: Permission): boolean {
  return role !== null && (ALLOWED[role] ?? []).includes(permission);
}

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

function readUser(): User | null {
  try {
    const raw = storage()?.getItem(USER_KEY);
    return raw ? (JSON.parse(raw) as User) : null;
  } catch {
    return null;
  }
}

class Session {
  token = $state<string | null>(storage()?.getItem(TOKEN_KEY) ?? null);
  user = $state<User | null>(readUser());
  mode = $state<AuthMode>('unknown');
  /** Why the user is looking at the login page (e.g. "your session has ended"). */
  notice = $state<string | null>(null);

  role = $derived<Role | null>(this.mode === 'open' ? 'admin' : (this.user?.role ?? null));
  signedIn = $derived(this.mode === 'open' || (this.mode === 'required' && !!this.token && !!this.user));
  /** Signed in with a temporary password: the server allows nothing but changing it. */
  passwordChangeDue = $derived(this.signedIn && this.mode === 'required' && !!this.user?.must_change_password);

  constructor() {
    configureApi({
      token: () => this.token,
      role: () => this.role,
      onUnauthorized: () => this.expire('Your session has ended. Please log in again.'),
    });
    if (typeof window !== 'undefined') {
      window.addEventListener('storage', (event) => {
        if (event.key !== TOKEN_KEY) return;
        if (!event.newValue) this.clear();
        else if (event.newValue !== this.token) {
          this.token = event.newValue;
          void this.restore();
        }
      });
    }
  }

  /** Who the server records as doing things (runs' started_by, holds' holder): the email, or
   * "anonymous" on a server without the auth service. */
  get actor(): string | null {
    return this.mode === 'open' ? 'anonymous' : (this.user?.email ?? null);
  }

  can(permission: Permission): boolean {
    return roleAllows(this.role, permission);
  }

  /** On start: check a stored token, or find out whether the server wants one at all. */
  async restore(): Promise<void> {
    try {
      const current = await auth.session();
      this.setUser(current.user);
      this.mode = 'required';
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 404) {
        this.mode = 'open';
      } else if (error.status === 401) {
        this.clear();
        this.mode = 'required';
      } else if (error.status === 0) {
        this.mode = 'unreachable';
      } else {
        this.mode = 'required';
      }
    }
  }

  async login(email: string, password: string): Promise<User> {
    const answer = await auth.login(email, password);
    this.token = answer.token;
    storage()?.setItem(TOKEN_KEY, answer.token);
    this.setUser(answer.user);
    this.mode = 'required';
    this.notice = null;
    return answer.user;
  }

  async logout(): Promise<void> {
    try {
      if (this.token) await auth.logout();
    } catch {
      // The token may already be dead; logging out locally is what matters.
    }
    this.clear();
    this.notice = 'You have logged out.';
  }

  expire(message: string): void {
    if (!this.token) return;
    this.clear();
    this.notice = message;
  }

  setUser(user: User): void {
    this.user = user;
    storage()?.setItem(USER_KEY, JSON.stringify(user));
  }

  private clear(): void {
    this.token = null;
    this.user = null;
    storage()?.removeItem(TOKEN_KEY);
    storage()?.removeItem(USER_KEY);
  }
}

export const session = new Session();
