import { afterEach, describe, expect, it, vi } from 'vitest';
import { catalogEntry, environmentCatalog, type CatalogKind } from './catalog';
import type { Environment } from './types';

afterEach(() => vi.unstubAllGlobals());

const environment: Environment = { id: 'e1', name: 'Bench', description: '', variables: { temperature_c: '23' }, created_at: '', updated_at: '' };

describe('catalogEntry', () => {
  it('fetches the entry, fills the form with it and names the browser tab after it', async () => {
    const get = vi.fn().mockResolvedValue(environment);
    const kind: CatalogKind<Environment> = { ...environmentCatalog, api: { ...environmentCatalog.api, get } };
    const filled: Environment[] = [];
    const entry = catalogEntry(kind, () => 'e1', (e) => filled.push(e));
    await entry.load();
    expect(get).toHaveBeenCalledWith('e1');
    expect(entry.value).toEqual(environment);
    expect(filled).toEqual([environment]);
    expect(document.title).toBe('Bench · devicelab');
  });

  it('fetches nothing for a new entry', async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
    const entry = catalogEntry(environmentCatalog, () => undefined, () => {});
    await entry.load();
    expect(fetchMock).not.toHaveBeenCalled();
    expect(entry.loading).toBe(false);
    expect(entry.value).toBeNull();
  });

  it('asks the API of its kind', async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response(JSON.stringify(environment), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await catalogEntry(environmentCatalog, () => 'e1', () => {}).load();
    expect(fetchMock.mock.calls[0][0]).toBe('/api/environments/e1');
  });
});
