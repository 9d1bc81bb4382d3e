// The catalogue: test cases and environments, the things engineers define (`catalog.edit`) and
// runs are made of. Both have the same pages (a searchable list, one page per entry); what
// differs between the two is said here once, for the list and for the entry's page alike.

import { environments, testCases, type Query } from './api';
import { RemoteRecord } from './remote-record.svelte';
import type { Environment, Page, TestCase } from './types';

/** What the catalogue pages need of an entry. */
export interface CatalogEntry {
  id: string;
  name: string;
  description: string;
}

export interface CatalogKind<T extends CatalogEntry> {
  /** Singular and plural as they read in a sentence: “New environment”, “No environments yet.” */
  noun: string;
  plural: string;
  /** The list page; an entry's page is `${path}/${id}`, a new entry's `${path}/new`. */
  path: string;
  /** The run-list filter (query parameter) that shows the runs of one entry. */
  runsFilter: string;
  /** What deleting one means, said before it is done. */
  deleteWarning: string;
  api: {
    list(query: Query, signal?: AbortSignal): Promise<Page<T>>;
    get(id: string): Promise<T>;
    remove(id: string): Promise<void>;
  };
}

export const environmentCatalog: CatalogKind<Environment> = {
  noun: 'environment',
  plural: 'environments',
  path: '/environments',
  runsFilter: 'environment_id',
  deleteWarning: 'Runs that used this environment keep their own copy of it. This cannot be undone.',
  api: environments,
};

export const testCaseCatalog: CatalogKind<TestCase> = {
  noun: 'test case',
  plural: 'test cases',
  path: '/test-cases',
  runsFilter: 'test_case_id',
  deleteWarning:
    'The test case disappears from the catalogue. Runs that used it keep their own copy of it. This cannot be undone.',
  api: testCases,
};

/**
 * The entry an entry's page edits, fetched by `id()` (nothing to fetch without one: a new entry).
 * `fill` puts the loaded entry into the page's form.
 */
export function catalogEntry<T extends CatalogEntry>(
  kind: CatalogKind<T>,
  id: () => string | undefined,
  fill: (entry: T) => void,
): RemoteRecord<T> {
  return new RemoteRecord<T>(() => {
    const entryId = id();
    if (!entryId) return null;
    return kind.api.get(entryId).then((entry) => {
      fill(entry);
      document.title = `${entry.name} · devicelab`;
      return entry;
    });
  });
}
