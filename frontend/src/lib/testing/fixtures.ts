// What the unit and component tests share: a device with every field, JSON answers for a
// stubbed fetch, and a signed-in session around a test.

import { vi } from 'vitest';
import { session } from '../session.svelte';
import type { Device, User } from '../types';

export function makeDevice(changes: Partial<Device> = {}): Device {
  return {
    id: 'd1',
    name: 'meter-01',
    model: '',
    serial: '',
    firmware_version: '',
    location: '',
    labels: {},
    status: 'available',
    run_id: null,
    offline_pending: false,
    drain_pending: false,
    service_state: 'in_service',
    out_of_service: null,
    last_seen_at: null,
    created_at: '2026-12-01T08:00:00+00:00',
    updated_at: '2026-12-01T08:00:00+00:00',
    ...changes,
  };
}

export const jsonResponse = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

export const notFound = (url: string) => jsonResponse({ code: 'not_found', message: `unexpected ${url}`, errors: {} }, 404);

export type FetchHandler = (url: string, init?: RequestInit) => Response | Promise<Response>;

/** Signs `user` in (auth required) and answers fetches with `handler`; returns the mock. */
export function signedInWith(user: Pick<User, 'email' | 'role'> & Partial<User>, handler: FetchHandler) {
  session.mode = 'required';
  session.token = 'token';
  session.setUser({ id: 'u1', name: '', ...user } as User);
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => handler(url, init));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

export function signOutAfterTest(): void {
  vi.unstubAllGlobals();
  session.token = null;
  session.user = null;
}
