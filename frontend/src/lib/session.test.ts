import { afterEach, describe, expect, it } from 'vitest';
import { session } from './session.svelte';

const user = { id: 'u1', email: 'ada@lab.test', name: 'Ada', role: 'engineer' as const };

afterEach(() => {
  session.token = null;
  session.user = null;
  session.mode = 'unknown';
});

describe('a session signed in with a temporary password', () => {
  it('must change the password before anything else, until the server says it is done', () => {
    session.mode = 'required';
    session.token = 'token';
    session.setUser({ ...user, must_change_password: true });
    expect(session.signedIn).toBe(true);
    expect(session.passwordChangeDue).toBe(true);

    session.setUser({ ...user, must_change_password: false });
    expect(session.passwordChangeDue).toBe(false);
  });

  it('is not asked for without an auth service or when signed out', () => {
    session.setUser({ ...user, must_change_password: true });
    session.mode = 'open';
    expect(session.passwordChangeDue).toBe(false);
    session.mode = 'required';
    session.token = null;
    expect(session.passwordChangeDue).toBe(false);
  });
});
