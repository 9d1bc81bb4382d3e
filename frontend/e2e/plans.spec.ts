// The Plans page in the browser against a running lab (devicelab up: server, worker and a
// simulating runner): a plan defined in the form with a cron line and the new-firmware
// switch, listed with its triggers, started by hand (its plan run page follows the runs to
// the overall verdict), and started by itself when a device of its selection reports new
// firmware through the heartbeat endpoint.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const stamp = Date.now().toString(36);
const PLAN = `E2E plan ${stamp}`;

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

async function created<T = { id: string; name: string }>(url: string, body: unknown): Promise<T> {
  const answer = await api.post<T>(url, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body;
}

test('a plan defined, started by hand, and started by new firmware', async () => {
  test.skip(!(await api.canManageDevices()), 'only an admin adds the device it needs');
  test.setTimeout(180_000);
  const device = await created('/api/devices', { name: `e2e-plan-${stamp}`, model: `E2E-PLAN-${stamp}`, firmware_version: '1.0.0' });
  const testCase = await created('/api/test-cases', {
    name: `E2E plan voltage ${stamp}`,
    criteria: [{ metric: 'voltage', condition: '<=', threshold: 240, unit: 'V' }],
    duration_s: 0,
    timeout_s: 60,
  });
  const environment = await created('/api/environments', { name: `E2E plan bench ${stamp}` });

  await page.goto('/');
  if (authRequired()) {
    await page.getByLabel('Email').fill(credentials().email);
    await page.getByLabel('Password').fill(credentials().password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await page.getByRole('link', { name: 'Plans', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Test plans' })).toBeVisible();
  await page.getByRole('button', { name: 'New plan' }).or(page.getByRole('link', { name: 'New plan' })).click();

  const form = page.getByTestId('plan-form');
  await form.getByLabel('Name', { exact: true }).fill(PLAN);
  // a bad cron line is refused by the server next to the field
  await form.getByRole('checkbox', { name: testCase.name }).check();
  await form.getByRole('checkbox', { name: environment.name }).check();
  await form.getByRole('checkbox', { name: device.name }).check();
  await form.getByLabel(/Cron schedules/).fill('0 25 * * *');
  await form.getByRole('button', { name: 'Create plan' }).click();
  await expect(form.getByText('cron: hour: 25 is outside 0-23', { exact: true })).toBeVisible();
  await form.getByLabel(/Cron schedules/).fill('0 2 * * * Europe/Berlin');
  await form.getByRole('switch').check();
  await form.getByRole('button', { name: 'Create plan' }).click();

  const row = page.locator(`tr[data-plan="${PLAN}"]`);
  await expect(row.getByText('cron 0 2 * * * (Europe/Berlin)')).toBeVisible();
  await expect(row.getByText('on new firmware')).toBeVisible();
  await expect(row.getByText('never run')).toBeVisible();
  await shot(page, 'plans');

  await row.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByRole('heading', { name: new RegExp(`Plan run .* of ${PLAN}`) })).toBeVisible();
  await expect(page.getByTestId('plan-run-runs').getByRole('link')).toHaveCount(1);
  // the simulating runner completes the run; the page follows it to the overall verdict
  await expect(page.getByTestId('plan-run-verdict').getByText(/^(pass|fail|inconclusive)$/)).toBeVisible({ timeout: 90_000 });
  await expect(page.getByText('1 of 1 run finished')).toBeVisible();
  await shot(page, 'plan-run');

  // new firmware reported by the device: the worker starts the plan on it
  const beat = await api.post(`/api/devices/${device.id}/heartbeat`, { firmware_version: '1.1.0' });
  expect(beat.status).toBe(200);
  const plans = await api.get<{ items: { id: string; name: string }[] }>(`/api/plans?q=${encodeURIComponent(PLAN)}`);
  const planId = plans.items[0].id;
  await expect
    .poll(async () => (await api.get(`/api/plan-runs?plan_id=${planId}`)).items.map((r: { cause: { kind: string } }) => r.cause.kind), {
      timeout: 60_000,
    })
    .toContain('new_firmware');
  await page.goto(`/plans/${planId}`);
  await expect(page.getByTestId('plan-runs-table').getByText(`new firmware 1.1.0 on ${device.name}`)).toBeVisible();
});
