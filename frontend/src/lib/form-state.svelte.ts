// The state every form shares: per-field problems, a general message, and "saving…".
// Client-side checks and server answers land in the same `errors`, keyed by field path.

import { ApiError, type FieldErrors } from './api';
import { hasErrors, unshownErrors } from './forms';

export class FormState {
  errors = $state<FieldErrors>({});
  message = $state('');
  details = $state<string[]>([]);
  busy = $state(false);
  /** The API's answer when the last submit failed with one (e.g. to read a 409's details). */
  error = $state<ApiError | null>(null);

  /** The field paths this form shows next to its inputs. */
  constructor(private readonly fields: string[]) {}

  reset(): void {
    this.errors = {};
    this.message = '';
    this.details = [];
    this.error = null;
  }

  /** Runs `action` unless `problems` (client-side checks) found something; returns its result. */
  async submit<T>(problems: FieldErrors, action: () => Promise<T>): Promise<T | undefined> {
    this.reset();
    if (hasErrors(problems)) {
      this.errors = problems;
      this.message = 'Please correct the marked fields.';
      this.details = unshownErrors(problems, this.fields);
      return undefined;
    }
    this.busy = true;
    try {
      return await action();
    } catch (error) {
      this.fail(error);
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  fail(error: unknown): void {
    if (error instanceof ApiError) {
      this.error = error;
      this.errors = error.fieldErrors;
      this.details = unshownErrors(error.fieldErrors, this.fields);
      const allShown = hasErrors(error.fieldErrors) && this.details.length === 0;
      this.message = allShown && error.status === 422 ? 'Please correct the marked fields.' : error.message;
    } else {
      this.message = `Something went wrong: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}
