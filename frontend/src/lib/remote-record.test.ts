import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { RemoteRecord } from './remote-record.svelte';

describe('RemoteRecord', () => {
  it('holds the fetched record', async () => {
    const record = new RemoteRecord(() => Promise.resolve({ id: 'r1' }));
    expect(record.loading).toBe(true);
    await record.load();
    expect(record).toMatchObject({ value: { id: 'r1' }, loading: false, notFound: false, error: '' });
  });

  it('tells a missing record from a failure', async () => {
    const missing = new RemoteRecord(() => Promise.reject(new ApiError(404, 'not_found', 'No such run.')));
    await missing.load();
    expect(missing).toMatchObject({ value: null, loading: false, notFound: true, error: '' });

    const failing = new RemoteRecord(() => Promise.reject(new ApiError(0, 'network_error', 'Cannot reach the server.')));
    await failing.load();
    expect(failing).toMatchObject({ value: null, loading: false, notFound: false, error: 'Cannot reach the server.' });
  });

  it('keeps what it had when a reload fails, and clears the failure on the next success', async () => {
    const fetch = vi
      .fn<() => Promise<{ v: number }>>()
      .mockResolvedValueOnce({ v: 1 })
      .mockRejectedValueOnce(new Error('boom'))
      .mockResolvedValueOnce({ v: 2 });
    const record = new RemoteRecord(fetch);
    await record.load();
    await record.load();
    expect(record.value).toEqual({ v: 1 });
    expect(record.error).toBe('Error: boom');
    await record.load();
    expect(record.value).toEqual({ v: 2 });
    expect(record.error).toBe('');
  });

  it('has nothing to load for a new record', async () => {
    const record = new RemoteRecord<{ id: string }>(() => null);
    await record.load();
    expect(record).toMatchObject({ value: null, loading: false, notFound: false, error: '' });
  });
});
