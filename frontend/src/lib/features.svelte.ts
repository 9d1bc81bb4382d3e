// What this server offers beyond the core API. Parts of the backend arrive in releases (holds
// came after the queue): the UI asks once whether an endpoint exists and hides what depends on
// it while it answers 404, so one build works against older and newer servers.

import { ApiError, holds } from './api';

export type Presence = 'unknown' | 'present' | 'absent';

/** Whether an error says the endpoint itself is missing on this server. */
export function isMissingEndpoint(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

class Features {
  holds = $state<Presence>('unknown');
  #holdsProbe: Promise<boolean> | null = null;

  /** Whether the server has holds (GET /api/holds answers); asked once, again after a failure. */
  hasHolds(): Promise<boolean> {
    this.#holdsProbe ??= holds.list({ limit: 1 }).then(
      () => {
        this.holds = 'present';
        return true;
      },
      (error) => {
        if (isMissingEndpoint(error)) {
          this.holds = 'absent';
          return false;
        }
        this.#holdsProbe = null; // a network failure or a 5xx says nothing: ask again later
        return false;
      },
    );
    return this.#holdsProbe;
  }

  /** Ask again on the next use (another server, or in tests). */
  forget(): void {
    this.#holdsProbe = null;
    this.holds = 'unknown';
  }
}

export const features = new Features();
