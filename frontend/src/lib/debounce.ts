// Text filters write to the URL (and so reload the list) only after a pause in typing.

/** A function that runs `action` once calls to it have stopped for `waitMs`. */
export function debounce(action: () => void, waitMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(action, waitMs);
  };
}
