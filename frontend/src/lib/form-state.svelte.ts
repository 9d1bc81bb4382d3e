// The state every form shares: per-field problems, a general message, and "saving…".
// Client-side checks and server answers land in the same `errors`, keyed by field path.

import { ApiError, type FieldErrors } from './api';
import { hasErrors, unshownErrors, withoutEditedFields } from './forms';

export const CORRECT_MARKED = 'Please correct the marked fields.';

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
      this.message = CORRECT_MARKED;
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

  /**
   * For `{@attach form.clearOnEdit}` on the <form>: as soon as a marked field is edited (an
   * `input` or `change` event from it), its problem goes away, not only at the next submit. A
   * field is known by the message its input, or a group around it, points at with
   * `aria-describedby` (see `fieldAttrs`).
   */
  clearOnEdit = (form: HTMLElement): (() => void) => {
    const edited = (event: Event) => {
      const ids: string[] = [];
      for (let node = event.target as Element | null; node && node !== form; node = node.parentElement) {
        ids.push(...(node.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean));
      }
      this.clearEdited(ids);
    };
    form.addEventListener('input', edited);
    form.addEventListener('change', edited);
    return () => {
      form.removeEventListener('input', edited);
      form.removeEventListener('change', edited);
    };
  };

  /** Drops the problems shown in these messages (ids from `errorId`); and the general "correct
   * the marked fields" once no marked field is left. */
  clearEdited(messageIds: string[]): void {
    const left = withoutEditedFields(this.errors, messageIds);
    if (Object.keys(left).length === Object.keys(this.errors).length) return;
    this.errors = left;
    if (!hasErrors(left) && this.message === CORRECT_MARKED && this.details.length === 0) this.message = '';
  }

  fail(error: unknown): void {
    if (error instanceof ApiError) {
      this.error = error;
      this.errors = error.fieldErrors;
      this.details = unshownErrors(error.fieldErrors, this.fields);
      const allShown = hasErrors(error.fieldErrors) && this.details.length === 0;
      this.message = allShown && error.status === 422 ? CORRECT_MARKED : error.message;
    } else {
      this.message = `Something went wrong: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}
