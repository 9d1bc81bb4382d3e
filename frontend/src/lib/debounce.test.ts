import { afterEach, describe, expect, it, vi } from 'vitest';
import { debounce } from './debounce';

afterEach(() => vi.useRealTimers());

describe('debounce', () => {
  it('runs once, after the calls have stopped for the wait', () => {
    vi.useFakeTimers();
    const action = vi.fn();
    const typed = debounce(action, 300);
    typed();
    vi.advanceTimersByTime(200);
    typed();
    vi.advanceTimersByTime(299);
    expect(action).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(action).toHaveBeenCalledTimes(1);
    typed();
    vi.advanceTimersByTime(300);
    expect(action).toHaveBeenCalledTimes(2);
  });
});
