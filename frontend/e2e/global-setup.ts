// Starts a real devicelab (`.venv/bin/devicelab up`) on a free port with a throw-away data
// directory and a fixed secret key, finds credentials to log in with, and hands everything
// to the tests through environment variables. The returned function stops the server.

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..', '..');
const bin = (name: string) => path.join(repo, '.venv', 'bin', name);
const E2E_EMAIL = 'e2e-admin@devicelab.test';
const E2E_PASSWORD = 'e2e-admin-password-0123';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function status(url: string, init?: RequestInit): Promise<number> {
  // A kept-alive connection the server closed meanwhile fails once; a fresh one then works.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return (await fetch(url, init)).status;
    } catch {
      await sleep(100);
    }
  }
  return 0;
}

async function canLogIn(base: string, email: string, password: string): Promise<boolean> {
  const code = await status(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return code === 200;
}

/** Demo admin credentials as `devicelab up` prints them once for a new lab. */
export function credentialsFrom(output: string): { email: string; password: string } | null {
  const lines = output.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const password = /\bpassword\b\s*(?:is\s*)?[:=]?\s*["'`]?([^\s"'`]+)/i.exec(lines[i]);
    if (!password) continue;
    const nearby = lines.slice(Math.max(0, i - 2), i + 3).join('\n');
    const email = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/.exec(nearby);
    if (email) return { email: email[0], password: password[1] };
  }
  return null;
}

function createUserWithCli(env: NodeJS.ProcessEnv): string {
  // `devicelab users create` asks for the password (twice when confirming) or reads an env var.
  const result = spawnSync(
    bin('devicelab'),
    ['users', 'create', '--email', E2E_EMAIL, '--name', 'E2E Admin', '--role', 'admin'],
    {
      cwd: repo,
      env: { ...env, DEVICELAB_NEW_USER_PASSWORD: E2E_PASSWORD },
      input: `${E2E_PASSWORD}\n${E2E_PASSWORD}\n`,
      timeout: 60_000,
      encoding: 'utf8',
    },
  );
  return `users create: exit ${result.status ?? result.error}; ${result.stdout ?? ''}${result.stderr ?? ''}`;
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  // For working on the UI: DEVICELAB_E2E_URL=http://127.0.0.1:8000 (with DEVICELAB_E2E_EMAIL
  // and DEVICELAB_E2E_PASSWORD when it wants a login) runs the tests against that server.
  if (process.env.DEVICELAB_E2E_URL) {
    const found = await status(`${process.env.DEVICELAB_E2E_URL}/auth/session`);
    process.env.DEVICELAB_E2E_AUTH = found === 404 ? 'open' : 'required';
    return async () => {};
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'devicelab-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEVICELAB_HOST: '127.0.0.1',
    DEVICELAB_PORT: String(port),
    DEVICELAB_DATA_DIR: dataDir,
    DEVICELAB_SECRET_KEY: 'e2e-browser-tests-secret-key-0123456789-abcdefghijklmnop',
    DEVICELAB_WORKERS: '1',
    DEVICELAB_THREADS: '16',
    DEVICELAB_GRAFANA_URL_TEMPLATE: 'https://grafana.example/d/devicelab?var-run={run_id}',
    // a health check designated by a test starts within a second, not a minute
    DEVICELAB_HEALTH_CHECK_INTERVAL_S: '1',
    PYTHONUNBUFFERED: '1',
  };
  const logDir = path.join(repo, 'build');
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(path.join(logDir, 'e2e-server.log'));
  let output = '';
  // Its own process group, so stopping it also stops the worker and runner it starts.
  const server = spawn(bin('devicelab'), ['up'], { cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let exited: number | null = null;
  server.on('exit', (code) => (exited = code ?? -1));
  for (const stream of [server.stdout, server.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      log.write(chunk);
    });
  }

  const stop = async () => {
    if (exited === null && server.pid) {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      for (let i = 0; i < 100 && exited === null; i++) await sleep(100);
      if (exited === null) {
        try {
          process.kill(-server.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    log.end();
    rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 90_000;
  while ((await status(`${base}/api/health`)) !== 200) {
    if (exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`devicelab did not start (exit ${exited}); its output:\n${output.slice(-4000)}`);
    }
    await sleep(250);
  }

  const authStatus = await status(`${base}/auth/session`);
  let auth = 'open';
  let email = process.env.DEVICELAB_E2E_EMAIL ?? '';
  let password = process.env.DEVICELAB_E2E_PASSWORD ?? '';
  if (authStatus !== 404) {
    auth = 'required';
    const found = [] as { email: string; password: string }[];
    if (email && password) found.push({ email, password });
    for (let i = 0; i < 20 && !credentialsFrom(output); i++) await sleep(100);
    const printed = credentialsFrom(output);
    if (printed) found.push(printed);
    found.push({ email: E2E_EMAIL, password: E2E_PASSWORD });
    let ok = null as { email: string; password: string } | null;
    for (const candidate of found) {
      if (await canLogIn(base, candidate.email, candidate.password)) {
        ok = candidate;
        break;
      }
    }
    let cli = '';
    if (!ok) {
      cli = createUserWithCli(env);
      if (await canLogIn(base, E2E_EMAIL, E2E_PASSWORD)) ok = { email: E2E_EMAIL, password: E2E_PASSWORD };
    }
    if (!ok) {
      await stop();
      throw new Error(
        'the server wants a login, but no credentials worked: none printed by `devicelab up`, ' +
          `and \`devicelab users create\` did not make a usable admin (${cli.trim()}). Output:\n` +
          output.slice(-4000),
      );
    }
    email = ok.email;
    password = ok.password;
  }

  process.env.DEVICELAB_E2E_URL = base;
  process.env.DEVICELAB_E2E_AUTH = auth;
  process.env.DEVICELAB_E2E_EMAIL = email;
  process.env.DEVICELAB_E2E_PASSWORD = password;
  return stop;
}
