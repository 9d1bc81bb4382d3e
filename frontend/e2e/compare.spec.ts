// The Compare page in the browser: two meters of one model on two firmware versions, the
// newer one failing the voltage case; the page shows the regression first, drills down to
// the runs on each side, and the dashboard lists it among the open regressions.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const stamp = Date.now().toString(36);
const MODEL = `E2E-CMP-${stamp}`;
const BASE = `9.${stamp.length}.0-${stamp}a`;
const TARGET = `9.${stamp.length}.1-${stamp}b`;
const CASE_NAME = `E2E compare voltage ${stamp}`;

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

async function created<T = { id: string }>(url: string, body: unknown): Promise<T> {
  const answer = await api.post<T>(url, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body;
}

test('a regression between two firmware versions, found and drilled into', async () => {
  test.skip(!(await api.canManageDevices()), 'only an admin adds the devices it needs');
  test.setTimeout(180_000);
  const [before, after] = [BASE, TARGET].map((firmware, n) =>
    created('/api/devices', { name: `e2e-cmp-${stamp}-${n}`, model: MODEL, firmware_version: firmware }),
  );
  const testCase = await created('/api/test-cases', {
    name: CASE_NAME,
    criteria: [{ metric: 'voltage', condition: '<=', threshold: 240, unit: 'V' }],
    duration_s: 0,
    timeout_s: 60,
  });
  const environment = await created('/api/environments', { name: `E2E compare bench ${stamp}` });
  const runIds: string[] = [];
  for (const [device, passProbability] of [[await before, 1], [await after, 0]] as const) {
    for (let i = 0; i < 3; i++) {
      const run = await created('/api/test-runs', {
        test_case_ids: [testCase.id],
        environment_id: environment.id,
        device_ids: [device.id],
        parameters: { pass_probability: passProbability },
      });
      runIds.push(run.id);
    }
  }
  const deadline = Date.now() + 120_000;
  for (const id of runIds) {
    let status = '';
    while (Date.now() < deadline && status !== 'completed') {
      status = (await api.get(`/api/test-runs/${id}`)).status;
      if (status === 'failed' || status === 'aborted') throw new Error(`run ${id} ended ${status}`);
      if (status !== 'completed') await new Promise((r) => setTimeout(r, 500));
    }
    expect(status, `run ${id}`).toBe('completed');
  }

  await page.goto('/');
  if (authRequired()) {
    await page.getByLabel('Email').fill(credentials().email);
    await page.getByLabel('Password').fill(credentials().password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await page.getByRole('link', { name: 'Compare', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Compare' })).toBeVisible();
  await page.getByLabel('Base firmware').selectOption(BASE);
  await page.getByLabel('Target firmware').selectOption(TARGET);
  await page.getByLabel('Model').fill(MODEL);
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  await expect(page).toHaveURL(/base_firmware=/);

  await expect(page.getByTestId('compare-summary')).toContainText('1 regression');
  const first = page.getByTestId('compare-table').locator('tbody tr').first();
  await expect(first).toHaveAttribute('data-change', 'regression');
  await expect(first).toContainText(CASE_NAME);
  await expect(first.locator('[data-metric="voltage"]')).toContainText('worse');
  await shot(page, '20-compare');

  // Drill down: the latest run of each side, and the target's runs on the Runs page.
  await first.getByRole('button', { name: 'runs' }).click();
  const drill = page.getByTestId('drill-down');
  await expect(drill.getByRole('link', { name: /^run / })).toHaveCount(2);
  await drill.getByRole('link', { name: 'all its runs' }).last().click();
  await expect(page).toHaveURL(new RegExp(`/runs\\?.*firmware=${encodeURIComponent(TARGET).replace(/[.]/g, '\\.')}`));
  await expect(page.getByTestId('runs-table').locator('tbody tr')).toHaveCount(3);

  // The dashboard lists it among the open regressions, linking back to the comparison.
  await page.getByRole('link', { name: 'Dashboard' }).click();
  const open = page.getByTestId('open-regressions');
  await expect(open.locator(`[data-regression="${CASE_NAME}"]`)).toContainText(TARGET);
  await shot(page, '21-dashboard-regressions');
  await open.getByRole('link', { name: CASE_NAME }).click();
  await expect(page.getByTestId('compare-summary')).toContainText('1 regression');
});
