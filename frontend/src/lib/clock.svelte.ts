// One shared "now" that ticks, so relative times ("3 min ago") and elapsed times stay current
// without every component running its own timer.

class Clock {
  now = $state(Date.now());

  constructor(intervalMs = 1000) {
    if (typeof window !== 'undefined') setInterval(() => (this.now = Date.now()), intervalMs);
  }
}

export const clock = new Clock();
