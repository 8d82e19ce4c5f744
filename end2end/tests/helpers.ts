import { APIRequestContext, Page, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

/** Collects console errors and uncaught exceptions for the whole test. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** The demo target's port (its control API listens on the next one). */
export const demoPort = Number(process.env.TRIAGE_E2E_DEMO_PORT ?? 3918);

export const ADMIN = { email: 'admin@example.com', password: 'e2e admin password 1' };

/** The set-up token the server wrote to its data directory, while it has no users. */
export function setupToken(): string | undefined {
  const file = path.join(process.env.TRIAGE_E2E_DATA ?? '', 'setup-token');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : undefined;
}

/** Creates the first admin if there is none yet (through the set-up API, as a script would). */
export async function ensureAdmin(request: APIRequestContext) {
  const token = setupToken();
  if (token) {
    const res = await request.post('/api/v1/auth/setup', {
      data: { setup_token: token, email: ADMIN.email, password: ADMIN.password },
      headers: { origin: baseOrigin(request) },
    });
    expect([201, 409]).toContain(res.status());
  }
}

/** The app's origin, which writes must send (the server refuses cross-site writes). */
export const ORIGIN = `http://127.0.0.1:${Number(process.env.TRIAGE_E2E_PORT ?? 3917)}`;

function baseOrigin(_request: APIRequestContext): string {
  return ORIGIN;
}

/** Declares an incident through the API and returns its id. */
export async function declareIncident(request: APIRequestContext, data: Record<string, unknown>): Promise<string> {
  const declared = await request.post('/api/v1/incidents', { data, headers: { origin: ORIGIN } });
  expect(declared.status()).toBe(201);
  return (await declared.json()).id;
}

/** Signs `request` (a page's or a test's request context, sharing its cookies) in as `who`. */
export async function signIn(request: APIRequestContext, who = ADMIN) {
  await ensureAdmin(request);
  const res = await request.post('/api/v1/auth/login', {
    data: { email: who.email, password: who.password },
    headers: { origin: baseOrigin(request) },
  });
  expect(res.status(), await res.text()).toBe(200);
}

export const RESPONDER = { email: 'responder@example.com', password: 'e2e responder password' };

/** Creates the responder once (a 409 means an earlier test made it). */
export async function ensureResponder(admin: APIRequestContext) {
  const res = await admin.post('/api/v1/users', {
    data: { email: RESPONDER.email, password: RESPONDER.password, role: 'responder' },
    headers: { origin: baseOrigin(admin) },
  });
  expect([201, 409]).toContain(res.status());
}

/** Resolves every open incident, so the next one is new. */
export async function resolveOpen(admin: APIRequestContext) {
  const list = await (await admin.get('/api/v1/incidents')).json();
  for (const i of list) {
    if (i.status !== 'resolved') {
      const res = await admin.patch(`/api/v1/incidents/${i.id}`, {
        data: { status: 'resolved' },
        headers: { origin: baseOrigin(admin) },
      });
      expect(res.status(), await res.text()).toBe(200);
    }
  }
}

/** Switches the demo target to `scenario` through its control port. */
export async function demoScenario(request: APIRequestContext, scenario: string) {
  const res = await request.post(`http://127.0.0.1:${demoPort + 1}/control/${scenario}`);
  expect(res.ok()).toBe(true);
}

/** With no incident open, takes the demo target down and returns the incident Triage opens for it. */
export async function demoOutage(admin: APIRequestContext): Promise<string> {
  await demoScenario(admin, 'healthy');
  await resolveOpen(admin);
  await demoScenario(admin, 'down');
  let id = '';
  await expect
    .poll(
      async () => {
        const list = await (await admin.get('/api/v1/incidents?status=investigating')).json();
        id = list.find((i: any) => i.automatic && i.services.some((s: any) => s.name === 'shop'))?.id ?? '';
        return id;
      },
      { timeout: 30_000 },
    )
    .not.toBe('');
  return id;
}
