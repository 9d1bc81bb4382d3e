// A run's log and files in the browser: a command test case prints a line now and then and
// leaves a CSV; its run page shows the log growing while the run goes on (no reload), filters
// it, and downloads the file. The server is `devicelab up`, whose reference runner runs the
// command.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const stamp = Date.now().toString(36);
const python = path.resolve(import.meta.dirname, '..', '..', '.venv', 'bin', 'python');
const PROGRAM = [
  'import json, os, sys, time',
  'for n in range(1, 7):',
  '    print(f"tick {n}", flush=True)',
  '    if n == 3: print("relay chatter", file=sys.stderr, flush=True)',
  '    time.sleep(1.5)',
  'open(os.path.join(os.environ["DEVICELAB_ARTIFACT_DIR"], "trace.csv"), "w").write("t,v\\n0,230\\n")',
  'print(json.dumps({"metric": "voltage", "value": 230, "unit": "V"}))',
].join('\n');

let page: Page;
let api: Api;

test.beforeAll(async ({ browser, playwright }) => {
  const context = await browser.newContext({ baseURL: baseURL(), acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  api = new Api(await playwright.request.newContext());
  await api.login();
});

test.afterAll(async () => {
  await page?.context().close();
});

async function created<T = { id: string; name: string }>(url: string, body: unknown): Promise<T> {
  const answer = await api.post<T>(url, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body;
}

test('the log of a running run grows on its page, and its file downloads', async () => {
  test.skip(!(await api.canManageDevices()), 'only an admin defines what a test case executes');
  const device = await created('/api/devices', { name: `E2E log meter ${stamp}` });
  const testCase = await created('/api/test-cases', {
    name: `E2E talking case ${stamp}`,
    criteria: [{ metric: 'voltage', condition: '<=', threshold: 240, unit: 'V' }],
    duration_s: 9,
    timeout_s: 60,
    execution: { executor: 'command', command: [python, '-c', PROGRAM] },
  });
  const environment = await created('/api/environments', { name: `E2E log bench ${stamp}` });
  const run = await created('/api/test-runs', {
    test_case_ids: [testCase.id],
    environment_id: environment.id,
    device_ids: [device.id],
  });

  await page.goto('/');
  if (authRequired()) {
    await page.getByLabel('Email').fill(credentials().email);
    await page.getByLabel('Password').fill(credentials().password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await page.goto(`/runs/${run.id}`);
  await page.evaluate(() => ((window as unknown as { e2eMark: string }).e2eMark = 'same page'));

  const log = page.getByTestId('log-lines');
  await expect(log).toContainText('tick 1', { timeout: 30_000 });
  // the run is still going when the first lines show, and later ones come without a reload
  expect((await api.get(`/api/test-runs/${run.id}`)).status).toBe('running');
  await expect(log).not.toContainText('tick 6');
  await expect(log).toContainText('tick 4', { timeout: 20_000 });
  await shot(page, '20-run-log-live');

  await expect(page.locator('h1 [data-status]').first()).toHaveAttribute('data-status', 'completed', { timeout: 60_000 });
  await expect(log).toContainText('tick 6');
  expect(await page.evaluate(() => (window as unknown as { e2eMark?: string }).e2eMark)).toBe('same page');

  // the level filter and the search narrow the lines
  await page.getByLabel('Lowest level shown').selectOption('warning');
  await expect(log).toContainText('relay chatter');
  await expect(log).not.toContainText('tick 2');
  await page.getByLabel('Lowest level shown').selectOption('debug');
  await page.getByPlaceholder('text in the lines').fill('tick 5');
  await expect(log.locator('.log-line')).toHaveCount(1);
  await page.getByPlaceholder('text in the lines').fill('');

  // the file the command left downloads with its bytes
  const files = page.getByTestId('run-artifacts');
  const row = files.locator(`tr[data-artifact="${device.name}-trace.csv"]`);
  await expect(row).toBeVisible({ timeout: 20_000 });
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download' }).click()]);
  expect(download.suggestedFilename()).toBe(`${device.name}-trace.csv`);
  expect(readFileSync(await download.path(), 'utf8')).toBe('t,v\n0,230\n');
  await shot(page, '21-run-log-and-files');
});
