import { test, expect } from '@playwright/test';
import * as http from 'http';
import { AddressInfo } from 'net';
import { ADMIN, ORIGIN, demoOutage, demoScenario, resolveOpen, signIn, watchErrors } from './helpers';

// Notifications in the browser: an admin adds a webhook channel with the form, sends a test and
// finds it in the delivery log; then the demo target going down produces exactly one
// incident-opened message at the receiver (a real HTTP server on loopback, started here).

type Received = { path: string; body: any; signature?: string };

function startReceiver(): Promise<{ url: string; got: Received[]; close: () => void }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body: any = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      got.push({ path: req.url ?? '', body, signature: req.headers['x-triage-signature'] as string | undefined });
      res.writeHead(204);
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, got, close: () => server.close() });
    }),
  );
}

test('an admin adds a webhook, sends a test, and the demo outage is announced once', async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  const receiver = await startReceiver();
  await signIn(page.request, ADMIN);
  const name = `e2e hook ${Date.now()}`;
  const field = (f: string) => page.locator(`[data-field="${f}"] input`).first();

  await page.goto('/notifications');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByRole('button', { name: 'Add a channel' }).click();
  const form = page.getByRole('form', { name: 'Channel' });
  // A bad URL is refused next to its field.
  await field('name').fill(name);
  await field('url').fill('ftp://nowhere/hook');
  await form.getByRole('button', { name: 'Save channel' }).click();
  await expect(page.locator('[data-field="url"] .field-error')).toContainText('http');
  await field('url').fill(`${receiver.url}/hook`);
  await field('secret').fill('e2e-signing-secret');
  await form.getByRole('button', { name: 'Save channel' }).click();
  const row = page.locator(`tr[data-channel="${name}"]`);
  await expect(row).toBeVisible();
  // The secret is write-only: the page never gets it back.
  expect(await page.content()).not.toContain('e2e-signing-secret');

  await row.getByRole('button', { name: 'Send test' }).click();
  await expect(page.getByTestId('test-result')).toContainText('delivered');
  await expect(page).toHaveURL(/channel=/);
  const log = page.getByTestId('delivery-log');
  await expect(log.locator('tr[data-state="delivered"]').filter({ hasText: 'test' })).toHaveCount(1);
  expect(receiver.got.filter((r) => r.body?.event === 'test')).toHaveLength(1);
  expect(receiver.got[0].signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  await page.screenshot({ path: 'artifacts/notifications.png', fullPage: true });

  // The default rule sends incidents to every channel: one outage, one incident-opened message.
  const id = await demoOutage(page.request);
  await expect
    .poll(() => receiver.got.filter((r) => r.body?.event === 'incident.opened').length, { timeout: 30_000 })
    .toBe(1);
  const opened = receiver.got.find((r) => r.body?.event === 'incident.opened')!;
  expect(opened.body.incident.id).toBe(id);
  expect(opened.body.service.name).toBe('shop');
  // Two replicas without --public-url: the link names whichever one sent it (both serve it).
  const replicaOrigin = `http://127.0.0.1:${Number(process.env.TRIAGE_E2E_REPLICA_PORT ?? 3920)}`;
  expect([`${ORIGIN}/incidents/${id}`, `${replicaOrigin}/incidents/${id}`]).toContain(opened.body.url);
  // The other probes of shop fail too and join the incident: still one message.
  await expect
    .poll(
      async () => {
        const entries = await (await page.request.get(`/api/v1/incidents/${id}/timeline`)).json();
        return entries.filter((e: any) => e.kind === 'automatic' && /shop-ready\*\* is \*\*down/.test(e.text)).length;
      },
      { timeout: 30_000 },
    )
    .toBeGreaterThan(0);
  expect(receiver.got.filter((r) => r.body?.event === 'incident.opened')).toHaveLength(1);

  // The log shows it too, live data read again on reload.
  await page.reload();
  await expect(page.getByTestId('delivery-log').locator('tr').filter({ hasText: 'incident.opened' })).toHaveCount(1);

  await demoScenario(page.request, 'healthy');
  await resolveOpen(page.request);
  const channels = await (await page.request.get('/api/v1/channels')).json();
  for (const c of channels.filter((c: any) => c.name === name)) {
    const res = await page.request.delete(`/api/v1/channels/${c.id}`, { headers: { origin: ORIGIN } });
    expect(res.status()).toBe(204);
  }
  receiver.close();
  // The refused URL was a 400, as the API answers bad input; nothing else went wrong.
  expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([]);
});
