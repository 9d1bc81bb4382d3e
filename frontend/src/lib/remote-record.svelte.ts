// One record a page shows by id (a run, a test case, an environment), as reactive state: still
// loading, not found (deleted, or a wrong link), failed with a message to show, or there.

import { ApiError, errorMessage } from './api';

/** Fetches the record; null when there is nothing to fetch (the page of a new record). */
export type RecordFetcher<T> = () => Promise<T> | null;

export class RemoteRecord<T> {
  value = $state<T | null>(null);
  loading = $state(true);
  notFound = $state(false);
  error = $state('');

  constructor(private readonly fetch: RecordFetcher<T>) {}

  /** Fetches the record (again); a failure keeps what was there and lands in `error`. */
  load = async (): Promise<void> => {
    try {
      const fetching = this.fetch();
      if (fetching) this.value = await fetching;
      this.error = '';
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) this.notFound = true;
      else this.error = errorMessage(e);
    } finally {
      this.loading = false;
    }
  };
}
