// What the browser tests share: where the server is, how to log in, direct API calls for
// setting the scene, and screenshots for people to look at (build/screenshots/).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { APIRequestContext, Page } from '@playwright/test';

export const baseURL = () => process.env.DEVICELAB_E2E_URL!;
export const authRequired = () => process.env.DEVICELAB_E2E_AUTH === 'required';
export const credentials = () => ({
  email: process.env.DEVICELAB_E2E_EMAIL ?? '',
  password: process.env.DEVICELAB_E2E_PASSWORD ?? '',
});

const screenshots = path.resolve(import.meta.dirname, '..', '..', 'build', 'screenshots');

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshots, { recursive: true });
  // Let loading indicators go and charts draw, so the picture shows what a person would see.
  // (Not "network idle": the live event stream keeps a request open all the time.)
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

/** A small API client for arranging data, logged in like the UI when the server wants it. */
export class Api {
  private token: string | null = null;

  constructor(private readonly request: APIRequestContext) {}

  async login(): Promise<void> {
    if (!authRequired()) return;
    const response = await this.request.post(`${baseURL()}/auth/login`, { data: credentials() });
    if (!response.ok()) throw new Error(`API login failed: ${response.status()} ${await response.text()}`);
    this.token = (await response.json()).token;
  }

  private headers(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  async get<T = any>(url: string): Promise<T> {
    const response = await this.request.get(`${baseURL()}${url}`, { headers: this.headers() });
    if (!response.ok()) throw new Error(`GET ${url}: ${response.status()} ${await response.text()}`);
    return response.json();
  }

  async post<T = any>(url: string, data: unknown, headers: Record<string, string> = this.headers()): Promise<{ status: number; body: T }> {
    const response = await this.request.post(`${baseURL()}${url}`, { data, headers });
    const text = await response.text();
    return { status: response.status(), body: text ? JSON.parse(text) : undefined };
  }

  /** Whether the logged-in user may add and delete devices (admins; everybody in open access). */
  async canManageDevices(): Promise<boolean> {
    if (!authRequired()) return true;
    return (await this.get('/auth/session')).user.role === 'admin';
  }

  async availableDevices(): Promise<{ id: string; name: string; model: string }[]> {
    const page = await this.get('/api/devices?status=available&limit=200');
    return page.items.filter((d: { offline_pending: boolean }) => !d.offline_pending);
  }

  async testCaseNamed(name: string): Promise<{ id: string; name: string; criteria: { metric: string }[] }> {
    const page = await this.get(`/api/test-cases?q=${encodeURIComponent(name)}&limit=50`);
    const found = page.items.find((c: { name: string }) => c.name === name);
    if (!found) throw new Error(`no test case named ${name}`);
    return found;
  }

  async environmentNamed(name: string): Promise<{ id: string }> {
    const page = await this.get(`/api/environments?q=${encodeURIComponent(name)}&limit=50`);
    const found = page.items.find((e: { name: string }) => e.name === name);
    if (!found) throw new Error(`no environment named ${name}`);
    return found;
  }
}
