// The UI open in several tabs during a run (issue 13): every tab keeps its own live event
// stream open, and each one follows the run from where it was when the tab opened to its end,
// without reloading. Under the threaded server a handful of tabs took threads the REST calls
// needed; under the gevent worker each stream is a greenlet.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials } from './support';

const TABS = 4;
const stamp = Date.now().toString(36);

async function logIn(page: Page): Promise<void> {
  await page.goto('/');
  if (!authRequired()) return;
  await page.getByLabel('Email').fill(credentials().email);
  await page.getByLabel('Password').fill(credentials().password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
}

test('several tabs follow one run live, each on its own stream', async ({ browser, playwright }) => {
  const api = new Api(await playwright.request.newContext());
  await api.login();
  const made = await api.post<{ id: string }>('/api/test-cases', {
    name: `E2E live tabs ${stamp}`,
    criteria: [{ metric: 'energy_error_pct', condition: '<=', threshold: 5 }],
    duration_s: 8,
    timeout_s: 120,
  });
  expect(made.status).toBe(201);
  const environment = await api.post<{ id: string }>('/api/environments', { name: `E2E live tabs ${stamp}` });
  expect(environment.status).toBe(201);
  // a device of its own, in maintenance while the tabs open: the run waits for it, so what
  // the tabs show next (its start, its end) can only reach them live, however fast the runner
  const madeDevice = await api.post<{ id: string }>('/api/devices', { name: `e2e-tabs-${stamp}`, model: `TABS-${stamp}` });
  expect(madeDevice.status).toBe(201);
  const device = madeDevice.body;
  const setStatus = (status: string) =>
    api.post(`/api/devices/${device.id}/status`, { status, reason: 'e2e: the run waits while the tabs open' });
  expect((await setStatus('maintenance')).status).toBe(200);

  // One browser, one session (kept in localStorage), several tabs
  const context = await browser.newContext({ baseURL: baseURL() });
  const first = await context.newPage();
  await logIn(first);
  const tabs = [first];
  for (let n = 1; n < TABS; n++) tabs.push(await context.newPage());
  const streams = new Set<Page>();
  for (const tab of tabs) {
    tab.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/events') streams.add(tab);
    });
  }

  const run = await api.post<{ id: string }>('/api/test-runs', {
    test_case_ids: [made.body.id],
    environment_id: environment.body.id,
    device_ids: [device.id],
  });
  expect(run.status).toBe(201);
  for (const tab of tabs) {
    await tab.goto(`/runs/${run.body.id}`);
    await tab.evaluate(() => ((window as unknown as { e2eMark: string }).e2eMark = 'same page'));
  }
  // the run waits for its device while every tab shows it; bringing the device back starts
  // it, and what the tabs show next came to them live
  const badges = tabs.map((tab) => tab.locator('h1 [data-status]').first());
  for (const badge of badges) {
    await expect(badge).toHaveAttribute('data-status', 'waiting');
  }
  expect((await setStatus('available')).status).toBe(200);
  for (const badge of badges) {
    await expect(badge).toHaveAttribute('data-status', 'completed', { timeout: 90_000 });
  }
  for (const tab of tabs) {
    await expect(tab.getByTestId('run-outcome')).toContainText('verdict');
    expect(await tab.evaluate(() => (window as unknown as { e2eMark?: string }).e2eMark)).toBe('same page');
  }
  expect(streams.size).toBe(TABS); // each tab had a stream of its own
  // and the REST API answered all along
  expect((await api.get(`/api/test-runs/${run.body.id}`)).status).toBe('completed');
  await context.close();
});
