// Health checks in the browser: an admin designates one on the Health page for a model only
// this test's device has; the worker runs it on the device (the reference runner in
// simulation fails it: its criteria contradict each other), the device page shows the device
// bad with the failing run, an engineer's "Clear health" puts it back. Screenshots land in
// build/screenshots/.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const stamp = Date.now().toString(36);
const MODEL = `HC-${stamp}`;
const CHECK = `Self test ${stamp}`;

let page: Page;
let api: Api;
let deviceId = '';

test.beforeAll(async ({ browser, playwright }) => {
  const context = await browser.newContext({ baseURL: baseURL() });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  api = new Api(await playwright.request.newContext());
  await api.login();
  const device = await api.post('/api/devices', { name: `health-${stamp}`, model: MODEL });
  expect(device.status).toBe(201);
  deviceId = device.body.id;
  const probe = await api.post('/api/test-cases', {
    name: `Probe ${stamp}`,
    criteria: [
      { metric: 'voltage', condition: '<=', threshold: 200 },
      { metric: 'voltage', condition: '>=', threshold: 250 },
    ],
    duration_s: 1,
    timeout_s: 60,
  });
  expect(probe.status).toBe(201);
  expect((await api.post('/api/environments', { name: `Health bench ${stamp}` })).status).toBe(201);
});

test.afterAll(async () => {
  await page?.context().close();
});

async function logIn() {
  await page.goto('/');
  if (authRequired()) {
    await page.getByLabel('Email').fill(credentials().email);
    await page.getByLabel('Password').fill(credentials().password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
}

test('an admin designates a health check on the Health page', async () => {
  await logIn();
  await page.getByRole('link', { name: 'Health', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Health checks' })).toBeVisible();
  await page.getByRole('button', { name: 'Designate' }).click();
  await expect(page.getByText('Give it a name.')).toBeVisible(); // said before anything is sent
  await page.getByLabel(/^Name/).fill(CHECK);
  await page.getByLabel(/^Test case/).selectOption({ label: `Probe ${stamp}` });
  await page.getByLabel(/^Environment/).selectOption({ label: `Health bench ${stamp}` });
  await page.getByLabel(/^Model/).fill(MODEL);
  await page.getByRole('button', { name: 'Designate' }).click();
  const row = page.locator(`[data-health-check="${CHECK}"]`);
  await expect(row).toContainText(`model ${MODEL}`);
  await expect(row).toContainText('every 24 h, after maintenance or offline');
  await shot(page, 'health-checks');
});

test('the device page shows the failed check and clearing puts the device back', async () => {
  await page.goto(`/devices/${deviceId}`);
  const health = page.getByTestId('device-health');
  // the worker starts the check within a second; the runner fails it
  await expect(health.locator('[data-health="bad"]')).toBeVisible({ timeout: 60_000 });
  await expect(health).toContainText('ended fail');
  await expect(page.locator('h1 [data-health="bad"]')).toHaveText('health bad');
  await shot(page, 'device-health-bad');
  await health.getByRole('link', { name: 'the health check' }).click();
  await expect(page.locator('h1 [data-purpose="health_check"]')).toBeVisible();
  await page.goBack();

  await page.getByRole('button', { name: 'Clear health' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Clear health' }).click();
  await expect(page.getByTestId('device-health').locator('[data-health="unknown"]')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Clear health' })).toHaveCount(0);
  const device = await api.get(`/api/devices/${deviceId}`);
  expect(device.health).toBe('unknown');

  await page.goto('/runs?purpose=health_check');
  await expect(page.locator('[data-purpose="health_check"]').first()).toBeVisible();
});
