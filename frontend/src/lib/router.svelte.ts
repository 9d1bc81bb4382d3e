// A small History-API router: the current path and query as reactive state, `navigate()`, and
// pattern matching with `:params`. The backend answers index.html for any non-API path, so
// every route here can be reloaded or bookmarked.

export interface RouteMatch<T> {
  route: T;
  params: Record<string, string>;
}

/** Matches `/runs/:id` against `/runs/abc` → {id: 'abc'}. Trailing slashes are ignored. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const split = (p: string) => p.split('/').filter(Boolean);
  const want = split(pattern);
  const have = split(path);
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(':')) {
      try {
        params[want[i].slice(1)] = decodeURIComponent(have[i]);
      } catch {
        return null;
      }
    } else if (want[i] !== have[i]) {
      return null;
    }
  }
  return params;
}

export function findRoute<T extends { path: string }>(routes: T[], path: string): RouteMatch<T> | null {
  for (const route of routes) {
    const params = matchPath(route.path, path);
    if (params) return { route, params };
  }
  return null;
}

/** Whether a click on this link should be handled in-app instead of by the browser. */
export function isInAppLink(anchor: HTMLAnchorElement, event: MouseEvent, origin: string): boolean {
  if (event.defaultPrevented || event.button !== 0) return false;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (anchor.target && anchor.target !== '_self') return false;
  if (anchor.hasAttribute('download') || anchor.getAttribute('rel')?.includes('external')) return false;
  const href = anchor.getAttribute('href');
  if (!href || href.startsWith('#')) return false;
  const url = new URL(anchor.href, origin);
  if (url.origin !== origin) return false;
  return !/^\/(api|auth)(\/|$)/.test(url.pathname);
}

class Router {
  path = $state(typeof location === 'undefined' ? '/' : location.pathname);
  search = $state(typeof location === 'undefined' ? '' : location.search);

  query = $derived(new URLSearchParams(this.search));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('popstate', () => this.sync());
    }
  }

  private sync(): void {
    this.path = location.pathname;
    this.search = location.search;
  }

  navigate(to: string, options: { replace?: boolean } = {}): void {
    const url = new URL(to, location.origin);
    const target = url.pathname + url.search + url.hash;
    if (target === location.pathname + location.search + location.hash) return;
    if (options.replace) history.replaceState({}, '', target);
    else history.pushState({}, '', target);
    const pathChanged = url.pathname !== this.path;
    this.sync();
    if (pathChanged && !url.hash) window.scrollTo(0, 0);
  }

  /** Replace the query string (filters), keeping the path; empty values are dropped. */
  setQuery(values: Record<string, string | null | undefined>, options: { replace?: boolean } = { replace: true }): void {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(values)) {
      if (value) params.set(key, value);
    }
    const search = params.toString();
    this.navigate(this.path + (search ? `?${search}` : ''), options);
  }
}

export const router = new Router();

/** Opens an in-app path (for buttons and after saving). */
export function goto(to: string, options: { replace?: boolean } = {}): void {
  router.navigate(to, options);
}
