// A test engineer's day in the browser: log in, look at the lab, define a test case and an
// environment, start a run on two devices and watch it finish live, queue a run on a device
// taken from under the run form and see it start by itself, hold a device and release it,
// cancel a run, and log out. Screenshots land in build/screenshots/.

import { expect, test, type Page } from '@playwright/test';
import { Api, authRequired, baseURL, credentials, shot } from './support';

test.describe.configure({ mode: 'serial' });

const stamp = Date.now().toString(36);
const CASE_NAME = `E2E quick check ${stamp}`;
const ENV_NAME = `E2E bench ${stamp}`;
const LONG_CASE = 'Energy register accuracy'; // a demo test case of 60 s
const VIEWER = { email: `e2e-viewer-${stamp}@devicelab.test`, password: 'viewer-password-123' };

let page: Page;
let api: Api;
let runDevices: string[] = [];
let quickRunId = '';

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

async function waitForRunStatus(runId: string, wanted: string[], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let status = '';
  while (Date.now() < deadline) {
    status = (await api.get(`/api/test-runs/${runId}`)).status;
    if (wanted.includes(status)) return status;
    await new Promise((r) => setTimeout(r, 500));
  }
  return status;
}

test('log in', async () => {
  await page.goto('/');
  if (!authRequired()) {
    test.info().annotations.push({ type: 'note', description: 'server without auth service: open access, no login' });
    await expect(page.getByText('open access')).toBeVisible();
    return;
  }
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  await expect(page).toHaveURL(/\/login$/);
  // A wrong password is refused with a message, and nothing else is said.
  await page.getByLabel('Email').fill(credentials().email);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText(/wrong email or password|too many/i);
  await shot(page, '01-login');

  await page.getByLabel('Password').fill(credentials().password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await expect(page.getByTestId('user-menu')).toBeVisible();
});

test('dashboard shows device counts', async () => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await expect(page.getByTestId('count-available')).toHaveText(/^\d+$/);
  await shot(page, '02-dashboard');
});

test('devices: filter, open one, take it offline and back with a reason', async () => {
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Devices' })).toBeVisible();
  await expect(page.getByTestId('devices-table')).toBeVisible();
  await shot(page, '03-devices');

  await page.getByLabel('Status').selectOption('offline');
  await expect(page).toHaveURL(/status=offline/);
  const statuses = page.getByTestId('devices-table').locator('tbody td:nth-child(2) [data-status]');
  await expect(statuses.first()).toHaveAttribute('data-status', 'offline');
  await expect(page.getByTestId('devices-table').locator('tbody td:nth-child(2) [data-status]:not([data-status="offline"])')).toHaveCount(0);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await expect(page).not.toHaveURL(/status=/);

  const device = (await api.availableDevices()).at(-1)!;
  await page.getByRole('link', { name: device.name, exact: true }).click();
  await expect(page.getByRole('heading', { name: device.name })).toBeVisible();
  await page.getByRole('button', { name: 'Set offline' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel(/Reason/).fill('probe recalibration');
  await dialog.getByRole('button', { name: 'Set offline' }).click();
  await expect(page.locator('h1 [data-status]')).toHaveAttribute('data-status', 'offline');
  await expect(page.getByTestId('status-history')).toContainText('probe recalibration');
  await shot(page, '04-device');
  await page.getByRole('button', { name: 'Set available' }).click();
  await page.getByRole('dialog').getByLabel(/Reason/).fill('recalibrated');
  await page.getByRole('dialog').getByRole('button', { name: 'Set available' }).click();
  await expect(page.locator('h1 [data-status]')).toHaveAttribute('data-status', 'available');
});

test('put a device into maintenance with a reason and see who did it and why', async () => {
  const device = (await api.availableDevices()).at(0)!;
  await page.goto(`/devices/${device.id}`);
  await expect(page.getByRole('heading', { name: device.name })).toBeVisible();
  await page.getByRole('button', { name: 'Set maintenance' }).click();
  const dialog = page.getByRole('dialog');
  // the reason is required: the browser does not send the form without one
  await dialog.getByRole('button', { name: 'Set maintenance' }).click();
  await expect(dialog).toBeVisible();
  await dialog.getByLabel(/Reason/).fill('swap the current probe');
  await dialog.getByRole('button', { name: 'Set maintenance' }).click();
  await expect(page.locator('h1 [data-status]')).toHaveAttribute('data-status', 'maintenance');
  const note = page.getByTestId('out-of-service');
  await expect(note.locator('[data-field="reason"]')).toHaveText('swap the current probe');
  await expect(note.locator('[data-field="by"]')).not.toBeEmpty();
  await expect(page.getByTestId('status-history')).toContainText('swap the current probe');

  // it stays in maintenance after a reload, and the list shows it with its reason
  await page.goto('/devices?status=maintenance');
  const row = page.locator(`tr[data-device="${device.name}"]`);
  await expect(row.getByTestId('out-of-service')).toContainText('swap the current probe');

  await row.getByRole('button', { name: 'Set available' }).click();
  await page.getByRole('dialog').getByLabel(/Reason/).fill('probe swapped');
  await page.getByRole('dialog').getByRole('button', { name: 'Set available' }).click();
  await expect(row).toHaveCount(0);
});

test('add, edit and delete a device', async () => {
  test.skip(!(await api.canManageDevices()), 'only an admin manages devices');
  const name = `e2e-dongle-${stamp}`;
  await page.goto('/devices');
  await page.getByRole('button', { name: 'Add device' }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByLabel('Name', { exact: true }).fill(name);
  await dialog.getByLabel('Model').fill('P1 WiFi dongle');
  await dialog.getByLabel('Firmware version').fill('1.0.8');
  await dialog.getByRole('button', { name: '+ Add label' }).click();
  await dialog.getByLabel('Label 1').fill('type');
  await dialog.getByLabel('Value 1').fill('dongle');
  await dialog.getByLabel('Initial status').selectOption('offline');
  await dialog.getByRole('button', { name: 'Add device' }).click();
  const row = page.locator(`tr[data-device="${name}"]`);
  await expect(row).toContainText('type=dongle');
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'offline');

  await row.getByRole('link', { name }).click();
  await page.getByRole('button', { name: 'Edit' }).click();
  dialog = page.getByRole('dialog');
  await dialog.getByLabel('Firmware version').fill('1.0.9');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('1.0.9')).toBeVisible();

  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete device' }).click();
  await expect(page).toHaveURL(/\/devices$/);
  await expect(page.locator(`tr[data-device="${name}"]`)).toHaveCount(0);
});

test('create a test case, with problems shown next to their fields', async () => {
  await page.getByRole('link', { name: 'Test cases', exact: true }).click();
  await page.getByRole('button', { name: 'New test case' }).click();
  await expect(page.getByRole('heading', { name: 'New test case' })).toBeVisible();

  // Nothing filled in: the form says what is missing, where it is missing.
  await page.getByRole('button', { name: 'Create test case' }).click();
  await expect(page.getByLabel('Name', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Threshold 1')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText('Please correct the marked fields.')).toBeVisible();
  // Fixing a field takes its mark away at once; the others stay marked until they are fixed.
  await page.getByLabel('Name', { exact: true }).fill('x');
  await expect(page.getByLabel('Name', { exact: true })).not.toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('#error-name')).toHaveCount(0);
  await expect(page.getByLabel('Threshold 1')).toHaveAttribute('aria-invalid', 'true');

  // A name that is taken: the server's answer appears under the name.
  await page.getByLabel('Name', { exact: true }).fill(LONG_CASE);
  await page.getByLabel('Description').fill('Smoke check for the browser tests: finishes in two seconds.');
  await page.getByLabel('Metric 1').fill('energy_error_pct');
  await page.getByLabel('Condition 1').selectOption('<=');
  await page.getByLabel('Threshold 1').fill('5');
  await page.getByLabel('Unit 1').fill('%');
  await page.getByRole('button', { name: '+ Add criterion' }).click();
  await page.getByLabel('Metric 2').fill('standby_power_w');
  // a range: its own two inputs replace the threshold, checked before sending
  await page.getByLabel('Condition 2').selectOption('between');
  await page.getByLabel('Minimum 2').fill('10');
  await page.getByLabel('Maximum 2').fill('1');
  await page.getByRole('button', { name: 'Create test case' }).click();
  await expect(page.getByLabel('Maximum 2')).toHaveAttribute('aria-invalid', 'true');
  await page.getByLabel('Minimum 2').fill('0');
  await page.getByLabel('Maximum 2').fill('10');
  await page.getByLabel('Unit 2').fill('W');
  await page.getByLabel('Duration (seconds)').fill('2');
  await page.getByLabel('Timeout (seconds)').fill('120');
  await page.getByLabel('Tags').fill('e2e, smoke');
  await page.getByRole('button', { name: '+ Add parameter' }).click();
  await page.getByLabel('Parameter 1').fill('load_kw');
  await page.getByLabel('Value 1').fill('1.5');
  await page.getByRole('button', { name: 'Create test case' }).click();
  await expect(page.locator('#error-name')).toContainText(/taken|exists/i);
  await shot(page, '05-test-case-form');
  await page.getByLabel('Name', { exact: true }).fill(`${LONG_CASE} 2`);
  await expect(page.locator('#error-name')).toHaveCount(0); // gone before the next submit

  await page.getByLabel('Name', { exact: true }).fill(CASE_NAME);
  await page.getByRole('button', { name: 'Create test case' }).click();
  await expect(page).toHaveURL(/\/test-cases$/);
  await expect(page.getByTestId('test-cases-table')).toContainText(CASE_NAME);
  const created = await api.testCaseNamed(CASE_NAME);
  expect(created.criteria.map((c) => c.metric)).toEqual(['energy_error_pct', 'standby_power_w']);
  expect(created.criteria[1]).toMatchObject({ condition: 'between', min: 0, max: 10, threshold: null });
  await shot(page, '06-test-cases');
});

test('create an environment with variables', async () => {
  await page.getByRole('link', { name: 'Environments', exact: true }).click();
  await page.getByRole('button', { name: 'New environment' }).click();
  await page.getByLabel('Name', { exact: true }).fill(ENV_NAME);
  await page.getByLabel('Description').fill('Bench for the browser tests');
  await page.getByLabel('Variable 1').fill('temperature_c');
  await page.getByLabel('Value 1').fill('23');
  await page.getByRole('button', { name: '+ Add variable' }).click();
  await page.getByLabel('Variable 2').fill('network');
  await page.getByLabel('Value 2').fill('lab-wifi');
  await page.getByRole('button', { name: 'Create environment' }).click();
  await expect(page).toHaveURL(/\/environments$/);
  await expect(page.getByTestId('environments-table')).toContainText('temperature_c=23');
  await shot(page, '07-environments');
});

test('start a run on two devices and watch it complete live', async () => {
  runDevices = (await api.availableDevices()).slice(0, 2).map((d) => d.name);
  expect(runDevices).toHaveLength(2);
  await page.getByRole('button', { name: 'New run' }).first().click();
  await expect(page.getByRole('heading', { name: 'New run' })).toBeVisible();
  await page.getByLabel(CASE_NAME).check();
  await page.getByLabel('Environment', { exact: true }).selectOption({ label: ENV_NAME });
  // Devices that are not free can be picked too: the note says the run would wait for them.
  const offlineRow = page.getByTestId('device-picker').locator('tr.unavailable').first();
  if (await offlineRow.count()) {
    await expect(offlineRow.locator('input[type=checkbox]')).toBeEnabled();
    await expect(offlineRow.getByTestId('will-wait')).toContainText(/^will wait: /);
  }
  await expect(page.getByTestId('start-outlook')).toHaveAttribute('data-outlook', 'empty');
  for (const name of runDevices) await page.getByLabel(name, { exact: true }).check();
  await expect(page.getByTestId('start-outlook')).toHaveAttribute('data-outlook', 'now');
  await expect(page.getByRole('button', { name: 'Start run on 2 devices' })).toBeVisible();
  await shot(page, '08-new-run');
  await page.getByRole('button', { name: 'Start run on 2 devices' }).click();

  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  quickRunId = page.url().split('/').pop()!;
  // Mark the document: if the page reloaded, the mark would be gone.
  await page.evaluate(() => ((window as unknown as { e2eMark: string }).e2eMark = 'same page'));
  await expect(page.getByText(/^(measuring|waiting for a runner)…$/).first().or(page.getByTestId('run-outcome'))).toBeVisible();

  const status = await waitForRunStatus(quickRunId, ['running', 'completed', 'failed'], 20_000);
  if (status === 'queued') {
    throw new Error('the run stayed queued: no runner took its job (does `devicelab up` start the reference runner?)');
  }
  const badge = page.locator('h1 [data-status]').first();
  await expect(badge).toHaveAttribute('data-status', 'completed', { timeout: 60_000 });
  const outcome = page.getByTestId('run-outcome');
  await expect(outcome).toContainText('verdict');
  await expect(outcome.locator('[data-status]')).toHaveAttribute('data-status', /^(pass|marginal|fail|inconclusive)$/);
  expect(await page.evaluate(() => (window as unknown as { e2eMark?: string }).e2eMark)).toBe('same page');
  // Every device has a judged result per criterion: measured value against the threshold.
  const results = page.getByTestId(`results-${CASE_NAME}`);
  for (const name of runDevices) await expect(results.locator(`tr[data-result-device="${name}"]`).first()).toBeVisible();
  await expect(results).toContainText('energy_error_pct');
  await expect(results.locator('.badge.ok, .badge.bad, .badge.warn').first()).toBeVisible();
  // the simulating runner reports a series per metric: plotted with the criterion's limits
  await expect(results.locator('[data-testid="series-plot"][data-metric="standby_power_w"]').first()).toBeVisible();
  await expect(results.locator('[data-testid="series-plot"] canvas').first()).toBeVisible();
  const run = await api.get(`/api/test-runs/${quickRunId}`);
  if (run.grafana_url) {
    await expect(page.getByRole('button', { name: /Grafana/ })).toHaveAttribute('href', run.grafana_url);
  } else {
    test.info().annotations.push({ type: 'note', description: 'runs carry no grafana_url on this server' });
  }
  await shot(page, '09-run-completed');

  // Re-run opens the run form with the same choices.
  await page.getByRole('button', { name: 'Re-run' }).click();
  await expect(page.getByText('Prefilled from')).toBeVisible();
  await expect(page.getByLabel(CASE_NAME)).toBeChecked();
  await expect(page.locator('#run-environment option:checked')).toHaveText(ENV_NAME);
  for (const name of runDevices) await expect(page.getByLabel(name, { exact: true })).toBeChecked();
});

test('a run on a device taken while the form is open waits in the queue and starts by itself', async () => {
  const [testCase, longCase, environment, devices] = await Promise.all([
    api.testCaseNamed(CASE_NAME),
    api.testCaseNamed(LONG_CASE),
    api.environmentNamed(ENV_NAME),
    api.availableDevices(),
  ]);
  const target = devices[0];
  const sameModel = (await api.get(`/api/devices?limit=200`)).items.filter((d: { model: string }) => d.model === target.model);
  await page.goto(`/runs/new?test_case=${testCase.id}&environment=${environment.id}`);
  const outlook = page.getByTestId('start-outlook');

  // Devices asked for by kind: the form counts the matching ones, and says when the lab has too few.
  await page.getByRole('button', { name: '+ Add device request' }).click();
  const request = page.getByTestId('device-requests');
  await request.getByLabel('Model 1').selectOption(target.model);
  await expect(request.getByTestId('request-matches')).toHaveText(new RegExp(`^${sameModel.length} match · \\d+ free now$`));
  await request.getByLabel('Count 1').fill('99');
  await expect(outlook).toHaveAttribute('data-outlook', 'impossible');
  await expect(outlook).toContainText(`only ${sameModel.length} device`);
  await request.getByRole('button', { name: 'Remove request 1' }).click();
  await expect(outlook).toHaveAttribute('data-outlook', 'empty');

  await page.getByLabel(target.name, { exact: true }).check();
  await expect(outlook).toHaveAttribute('data-outlook', 'now');

  // Another run takes the device meanwhile: the form says so live, and that this run will wait.
  const blocker = await api.post<{ id: string; status: string }>('/api/test-runs', {
    test_case_ids: [longCase.id],
    environment_id: environment.id,
    device_ids: [target.id],
    when_busy: 'reject',
  });
  expect(blocker.status).toBe(201);
  const row = page.getByTestId('device-picker').locator(`tr[data-device="${target.name}"]`);
  await expect(row.getByTestId('will-wait')).toContainText('will wait: in a test');
  await expect(page.getByLabel(target.name, { exact: true })).toBeChecked();
  await expect(outlook).toHaveAttribute('data-outlook', 'waits');
  await expect(outlook).toContainText(`${target.name} is in a test`);
  await shot(page, '10-new-run-will-wait');
  await page.getByRole('button', { name: 'Start run on 1 device' }).click();

  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  const runId = page.url().split('/').pop()!;
  const badge = page.locator('h1 [data-status]').first();
  await expect(badge).toHaveAttribute('data-status', 'waiting');
  const queued = page.getByTestId('run-queue');
  await expect(queued.locator('[data-field="position"]')).toHaveText(/^\d+/);
  await expect(queued.locator('[data-field="waiting-for"]')).toContainText(target.name);
  await expect(queued.locator('[data-field="estimate"]')).toHaveText(/^(unknown|any moment now|in ~.+)$/);
  await expect(page.getByTestId('run-timeline')).toContainText(/position \d+ in the queue/);
  await shot(page, '10-run-waiting');

  // The Queue page lists it with its place, who asked, what it waits for, and a cancel for its owner.
  const queuePage = await page.context().newPage();
  await queuePage.goto('/queue');
  const item = queuePage.locator(`tr[data-queue-item="${runId}"]`);
  await expect(item.locator('[data-field="position"]')).toHaveText(/^\d+$/);
  await expect(item).toContainText(CASE_NAME);
  await expect(item).toContainText(target.name);
  await expect(item.getByRole('button', { name: 'Cancel' })).toBeVisible();
  await shot(queuePage, '10-queue');

  // The blocking run ends: the waiting run gets the device and starts, without a reload.
  await page.evaluate(() => ((window as unknown as { e2eMark: string }).e2eMark = 'same page'));
  const cancelled = await api.post(`/api/test-runs/${blocker.body.id}/cancel`, { reason: 'make room for the queue' });
  expect(cancelled.status).toBe(200);
  await expect(badge).toHaveAttribute('data-status', /^(queued|running|completed)$/, { timeout: 30_000 });
  await expect(queued).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { e2eMark?: string }).e2eMark)).toBe('same page');
  // and the Queue page drops it live
  await expect(item).toHaveCount(0);
  await queuePage.close();
  expect(await waitForRunStatus(runId, ['completed', 'failed'], 60_000)).toMatch(/completed|failed/);
});

// Needs the holds backend (POST/DELETE /api/holds, device status "held"): on a server without
// it (/api/holds answers 404) this test is skipped, on any other answer it runs.
test('a hold shows on the device page and ends when released', async () => {
  const [device] = await api.availableDevices();
  await page.goto(`/devices/${device.id}`);
  await expect(page.getByRole('heading', { name: device.name })).toBeVisible();
  await page.getByRole('button', { name: 'Hold', exact: true }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByLabel('For how long').selectOption({ label: '1 h' });
  await dialog.getByLabel(/Reason/).fill('re-flash by hand');
  await dialog.getByRole('button', { name: 'Hold', exact: true }).click();

  const status = page.locator('h1 [data-status]');
  await expect(status).toHaveAttribute('data-status', 'held');
  const note = page.getByTestId('device-hold');
  await expect(note.locator('[data-field="holder"]')).not.toBeEmpty();
  await expect(note.locator('[data-field="until"]')).not.toBeEmpty();
  await expect(note.locator('[data-field="reason"]')).toHaveText('re-flash by hand');
  await shot(page, '11-device-held');

  // Extending moves its end later.
  const before = (await api.get(`/api/devices/${device.id}`)).hold.until;
  await page.getByRole('button', { name: 'Extend hold' }).click();
  dialog = page.getByRole('dialog');
  await dialog.getByLabel('Longer by').selectOption({ label: '30 min' });
  await dialog.getByRole('button', { name: 'Extend' }).click();
  await expect(dialog).toBeHidden();
  await expect.poll(async () => new Date((await api.get(`/api/devices/${device.id}`)).hold.until).getTime()).toBeGreaterThan(new Date(before).getTime());

  // The device list and My holds (on the Queue page) show it too.
  await page.goto('/devices');
  await expect(page.locator(`tr[data-device="${device.name}"]`).getByTestId('device-hold')).toContainText('re-flash by hand');
  await page.goto('/queue');
  await expect(page.getByTestId('my-holds')).toContainText(device.name);
  await shot(page, '11-my-holds');

  await page.goto(`/devices/${device.id}`);
  await page.getByRole('button', { name: 'Release' }).click();
  await expect(status).toHaveAttribute('data-status', 'available');
  await expect(page.getByTestId('device-hold')).toHaveCount(0);
  const held = await api.get(`/api/holds?device_id=${encodeURIComponent(device.id)}&limit=5`);
  expect(held.items[0]).toMatchObject({ status: 'ended', end_reason: 'released' });
});

test('cancel another run', async () => {
  const [device] = await api.availableDevices();
  await page.goto('/runs/new');
  await page.getByLabel(LONG_CASE).check();
  await page.getByLabel('Environment', { exact: true }).selectOption({ label: ENV_NAME });
  await page.getByLabel(device.name, { exact: true }).check();
  await page.getByRole('button', { name: 'Start run on 1 device' }).click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  const runId = page.url().split('/').pop()!;
  await expect(page.getByTestId('run-progress')).toBeVisible();
  await page.getByRole('button', { name: 'Cancel run' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel(/Reason/).fill('wrong firmware flashed');
  await dialog.getByRole('button', { name: 'Cancel run' }).click();
  await expect(page.locator('h1 [data-status]').first()).toHaveAttribute('data-status', 'aborted');
  await expect(page.getByTestId('run-outcome')).toContainText('cancelled');
  await expect(page.getByTestId('run-timeline')).toContainText('wrong firmware flashed');
  await shot(page, '11-run-cancelled');
  expect((await api.get(`/api/devices/${device.id}`)).status).toBe('available');
  expect((await api.get(`/api/test-runs/${runId}`)).status).toBe('aborted');
});

test('runs history filters by status', async () => {
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await expect(page.getByTestId('runs-table')).toBeVisible();
  await shot(page, '12-runs');
  const headers = page.getByTestId('runs-table').locator('thead th');
  await expect(headers).toContainText(['Duration', 'Finished']);
  // The filters are a <search> landmark of separate fields, not one pico "search group" with a
  // pill-shaped ring around all of it when a field has the focus.
  const filters = page.locator('search[aria-label="Filter runs"] form.filters');
  await filters.getByLabel('Status').focus();
  expect(await filters.evaluate((form) => [form.getAttribute('role'), getComputedStyle(form).boxShadow])).toEqual([null, 'none']);
  await filters.getByLabel('From').fill('2026-01-31T23:45');
  const from = filters.getByLabel('From');
  await expect(from).toHaveValue('2026-01-31T23:45');
  expect((await from.boundingBox())!.width).toBeGreaterThanOrEqual(16 * 15); // date and time fit
  await filters.getByLabel('From').fill('');
  await page.getByLabel('Status').selectOption('aborted');
  await expect(page).toHaveURL(/status=aborted/);
  const badges = page.getByTestId('runs-table').locator('tbody td:nth-child(5) [data-status]');
  await expect(badges.first()).toHaveAttribute('data-status', 'aborted');
  await expect(page.getByTestId('runs-table').locator('tbody td:nth-child(5) [data-status]:not([data-status="aborted"])')).toHaveCount(0);
  await page.getByLabel('Status').selectOption('');
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByTestId('latest-results')).toBeVisible();
  await shot(page, '13-dashboard-after-runs');
});

test('readable on a tablet and in dark mode', async () => {
  await page.setViewportSize({ width: 768, height: 1024 });
  await page.goto('/devices');
  await expect(page.getByTestId('devices-table')).toBeVisible();
  await shot(page, '14-tablet-devices');
  await page.goto(`/runs/${quickRunId}`);
  await expect(page.getByTestId('run-outcome')).toBeVisible();
  await shot(page, '15-tablet-run');
  await page.setViewportSize({ width: 1366, height: 900 });
  // pico follows the system's colour scheme.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/');
  await expect(page.getByTestId('latest-results')).toBeVisible();
  await shot(page, '15-dark-dashboard');
  await page.goto(`/runs/${quickRunId}`);
  await expect(page.getByTestId('run-outcome')).toBeVisible();
  await shot(page, '15-dark-run');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('admin pages: users and my sessions', async () => {
  test.skip(!authRequired(), 'the server runs without the auth service');
  await page.goto('/users');
  await expect(page.getByTestId('users-table')).toContainText(credentials().email);
  await page.getByRole('button', { name: 'New user' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Email').fill(VIEWER.email);
  await dialog.getByLabel('Role').selectOption('viewer');
  await dialog.getByLabel('Initial password').fill('short');
  await dialog.getByRole('button', { name: 'Create user' }).click();
  await expect(dialog.getByText('At least 8 characters.')).toBeVisible();
  await dialog.getByLabel('Initial password').fill(VIEWER.password);
  await dialog.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByTestId('users-table')).toContainText(VIEWER.email);
  await shot(page, '16-users');
  await page.getByTestId('user-menu').click();
  await page.getByRole('link', { name: /My account/ }).click();
  await expect(page.getByTestId('sessions-table')).toContainText('this browser');
  const mine = page.getByTestId('sessions-table').locator('tbody tr', { hasText: 'this browser' });
  await expect(mine.locator('[data-column="client"]')).toHaveText(/^Chrome.* \d+ on Linux$/);
  await expect(mine.locator('[data-column="ip"]')).toHaveText('127.0.0.1');
  await shot(page, '17-my-sessions');
});

test('log out', async () => {
  test.skip(!authRequired(), 'the server runs without the auth service: nothing to log out of');
  await page.getByTestId('user-menu').click();
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  await expect(page.getByText('You have logged out.')).toBeVisible();
  // The old token is dead: the app does not come back on reload.
  await page.reload();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
});

test('a viewer reads but changes nothing', async () => {
  test.skip(!authRequired(), 'the server runs without the auth service: there are no roles');
  await page.getByLabel('Email').fill(VIEWER.email);
  await page.getByLabel('Password').fill(VIEWER.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('user-menu')).toContainText('viewer');
  await expect(page.getByRole('button', { name: 'New run' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await expect(page.getByTestId('devices-table')).toBeVisible();
  await expect(page.getByRole('button', { name: /Set (offline|online)/ })).toHaveCount(0);
  await page.getByRole('link', { name: 'Test cases', exact: true }).click();
  await page.getByRole('link', { name: CASE_NAME }).click();
  await expect(page.getByText(/may look at test cases but not change them/)).toBeVisible();
  await page.goto('/runs/new');
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await page.getByTestId('user-menu').click();
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
});

test('an admin resets a password; the user must choose their own before anything else', async () => {
  test.skip(!authRequired(), 'the server runs without the auth service: there are no passwords');
  await page.getByLabel('Email').fill(credentials().email);
  await page.getByLabel('Password').fill(credentials().password);
  await page.getByRole('button', { name: 'Log in' }).click();
  // the sign-in must have landed before the next navigation, or that one reloads the login page
  await expect(page.getByTestId('user-menu')).toBeVisible();
  await page.goto('/users');
  const row = page.getByTestId('users-table').locator('tbody tr', { hasText: VIEWER.email });
  await row.getByRole('button', { name: 'Reset password' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Reset password' }).click();
  const shown = page.getByTestId('temporary-password');
  await expect(shown).toBeVisible();
  const temporary = (await shown.textContent())!.trim();
  expect(temporary.length).toBeGreaterThanOrEqual(12);
  await shot(page, '18-temporary-password');
  await page.getByRole('dialog').getByRole('button', { name: 'Done' }).click();
  await expect(row).toContainText('temporary password');
  await page.getByTestId('user-menu').click();
  await page.getByRole('button', { name: 'Log out', exact: true }).click();

  // The old password is gone; the temporary one opens only the change screen.
  await page.getByLabel('Email').fill(VIEWER.email);
  await page.getByLabel('Password').fill(VIEWER.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText(/wrong email or password/i);
  await page.getByLabel('Password').fill(temporary);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Choose your password' })).toBeVisible();
  await expect(page.getByTestId('user-menu')).toHaveCount(0);
  await page.goto('/devices');
  await expect(page.getByRole('heading', { name: 'Choose your password' })).toBeVisible();
  await expect(page.getByTestId('devices-table')).toHaveCount(0);
  await shot(page, '19-forced-password-change');

  const form = page.getByTestId('password-form');
  await form.getByLabel('Temporary password').fill(temporary);
  await form.getByLabel('New password', { exact: true }).fill('viewer-own-passphrase');
  await form.getByLabel('New password again').fill('viewer-own-passphrase');
  await form.getByRole('button', { name: 'Set my password' }).click();
  await expect(page.getByTestId('devices-table')).toBeVisible();
  await expect(page.getByTestId('user-menu')).toContainText('viewer');
  await page.getByTestId('user-menu').click();
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await page.getByLabel('Email').fill(VIEWER.email);
  await page.getByLabel('Password').fill('viewer-own-passphrase');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('user-menu')).toContainText('viewer');
});
