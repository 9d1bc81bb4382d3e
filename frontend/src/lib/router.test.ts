import { describe, expect, it } from 'vitest';
import { findRoute, isInAppLink, matchPath } from './router.svelte';

describe('matchPath', () => {
  it('matches static and parameter segments', () => {
    expect(matchPath('/runs/:id', '/runs/abc-1')).toEqual({ id: 'abc-1' });
    expect(matchPath('/runs/:id', '/runs/abc/')).toEqual({ id: 'abc' });
    expect(matchPath('/runs/:id', '/runs')).toBeNull();
    expect(matchPath('/', '/')).toEqual({});
    expect(matchPath('/devices', '/test-cases')).toBeNull();
  });

  it('decodes parameters and refuses broken escapes', () => {
    expect(matchPath('/x/:name', '/x/a%20b')).toEqual({ name: 'a b' });
    expect(matchPath('/x/:name', '/x/%E0%A4%A')).toBeNull();
  });
});

describe('findRoute', () => {
  it('takes the first route that matches, so /new wins over /:id when listed first', () => {
    const routes = [{ path: '/runs/new' }, { path: '/runs/:id' }];
    expect(findRoute(routes, '/runs/new')?.route.path).toBe('/runs/new');
    expect(findRoute(routes, '/runs/42')).toEqual({ route: { path: '/runs/:id' }, params: { id: '42' } });
    expect(findRoute(routes, '/nope')).toBeNull();
  });
});

describe('isInAppLink', () => {
  const origin = 'http://lab.test';
  function link(href: string, attributes: Record<string, string> = {}) {
    const anchor = document.createElement('a');
    anchor.setAttribute('href', href);
    for (const [k, v] of Object.entries(attributes)) anchor.setAttribute(k, v);
    document.body.append(anchor);
    return anchor;
  }
  const click = (init: MouseEventInit = {}) => new MouseEvent('click', { button: 0, ...init });

  it('handles plain links to the app', () => {
    expect(isInAppLink(link('/devices'), click(), location.origin)).toBe(true);
  });

  it('leaves the API, other sites, new tabs and modified clicks to the browser', () => {
    expect(isInAppLink(link('/api/docs'), click(), location.origin)).toBe(false);
    expect(isInAppLink(link('/auth/login'), click(), location.origin)).toBe(false);
    expect(isInAppLink(link('https://grafana.example/d/1'), click(), origin)).toBe(false);
    expect(isInAppLink(link('/runs', { target: '_blank' }), click(), location.origin)).toBe(false);
    expect(isInAppLink(link('/runs'), click({ ctrlKey: true }), location.origin)).toBe(false);
    expect(isInAppLink(link('#main'), click(), location.origin)).toBe(false);
  });
});
