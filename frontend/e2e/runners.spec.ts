// The Runners page in the browser: while the reference runner that `devicelab up` starts
// executes a run, the page lists it online and busy with a link to that run, without a
// reload; an admin sees the drain button. The run is cancelled at the end.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const LONG_CASE = 'Energy register accuracy'; // a demo test case of 60 s

let page: Page;
let api: Api;

test.beforeAll(async ({ browser, playwright }) => {
  const context = await browser.newContext({ baseURL: baseURL() });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  api = new Api(await playwright.request.newContext());
  await api.login();
});

test.afterAll(async () => {
  await page?.context().close();
});

async function runnerOf(runId: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = await api.get(`/api/test-runs/${runId}`);
    if (run.status === 'running' && run.runner) return run.runner;
    if (!['waiting', 'queued', 'running'].includes(run.status)) throw new Error(`the run ended ${run.status}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('no runner took the run (does `devicelab up` start the reference runner?)');
}

test('the Runners page shows the reference runner online and busy during a run', async () => {
  await page.goto('/');
  if (authRequired()) {
    await page.getByLabel('Email').fill(credentials().email);
    await page.getByLabel('Password').fill(credentials().password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await page.getByRole('link', { name: 'Runners', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Runners' })).toBeVisible();

  const [device] = await api.availableDevices();
  const testCase = await api.testCaseNamed(LONG_CASE);
  const environment = (await api.get('/api/environments?limit=1')).items[0];
  const started = await api.post('/api/test-runs', {
    test_case_ids: [testCase.id],
    environment_id: environment.id,
    device_ids: [device.id],
  });
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  const runId: string = started.body.id;
  const runner = await runnerOf(runId, 30_000);

  // the page was open before the runner took the run: it shows it live
  const row = page.locator(`tr[data-runner="${runner}"]`);
  await expect(row).toHaveAttribute('data-state', 'online', { timeout: 20_000 });
  await expect(row).toHaveAttribute('data-busy', 'true');
  await expect(row.getByRole('link', { name: `run ${runId.slice(0, 8)}` })).toHaveAttribute('href', `/runs/${runId}`);
  await expect(row.locator('[data-field="doing"]')).toContainText('running');
  if (await api.canManageDevices()) await expect(row.getByRole('button', { name: 'Drain' })).toBeVisible();
  await row.getByRole('button', { name: 'Recent runs' }).click();
  await expect(page.getByTestId('runner-recent-runs').locator(`tr[data-recent-run="${runId}"]`)).toBeVisible();
  await shot(page, '30-runners');

  const cancelled = await api.post(`/api/test-runs/${runId}/cancel`, { reason: 'runners page test done' });
  expect(cancelled.status).toBe(200);
  await expect(row).toHaveAttribute('data-busy', 'false', { timeout: 20_000 });
});
