import { test, expect } from '@playwright/test';
import { ORIGIN, demoPort, signIn, watchErrors } from './helpers';

// The suite runs two replicas on one PostgreSQL (playwright.config.ts). A browser on the second
// watches a probe that only the first one checks: each result crosses the replica bus.
const second = `http://127.0.0.1:${Number(process.env.TRIAGE_E2E_REPLICA_PORT ?? 3920)}`;

test('a page open on one replica shows, live, the results another replica checks', async ({ page }) => {
  const errors = watchErrors(page);
  await signIn(page.request);
  const api = page.request;
  const write = { headers: { origin: ORIGIN } };
  await expect
    .poll(async () => (await (await api.get('/api/v1/replicas')).json()).filter((r: any) => r.alive).length)
    .toBe(2);
  const replicas = await (await api.get('/api/v1/replicas')).json();
  const firstPort = new URL(ORIGIN).port;
  const first = replicas.find((r: any) => r.alive && r.listen.endsWith(`:${firstPort}`));
  expect(first, JSON.stringify(replicas)).toBeTruthy();

  const service = await api.post('/api/v1/services', { data: { name: 'crossing' }, ...write });
  expect([201, 409]).toContain(service.status());
  // Who runs a probe follows from its id: make probes until the first replica runs one.
  let probe: any = null;
  for (let i = 0; i < 30 && !probe; i++) {
    const res = await api.post('/api/v1/probes', {
      data: {
        name: `crossing-${Date.now()}-${i}`,
        service: 'crossing',
        kind: 'http',
        url: `http://127.0.0.1:${demoPort}/healthz`,
        interval_secs: 1,
        timeout_ms: 800,
      },
      ...write,
    });
    expect(res.status(), await res.text()).toBe(201);
    const created = await res.json();
    const owner = await (await api.get(`/api/v1/probes/${created.id}/replica`)).json();
    if (owner.id === first.id) {
      probe = created;
    } else {
      expect((await api.delete(`/api/v1/probes/${created.id}`, write)).status()).toBe(204);
    }
  }
  expect(probe, 'a probe run by the first replica').toBeTruthy();

  await page.goto(`${second}/services/${probe.service_id}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.live')).toHaveText('● live');
  const results = page.getByRole('table', { name: 'Recent results' });
  const newest = async () =>
    (await results.getByRole('button', { name: /^Copy request id / }).first().getAttribute('aria-label')) ?? '';
  await expect.poll(newest).not.toBe('');
  const before = await newest();
  // Without a reload: the first replica's next checks arrive through the second's live stream.
  await expect.poll(newest, { timeout: 15_000 }).not.toBe(before);
  await page.screenshot({ path: 'artifacts/replica-live.png', fullPage: true });

  expect((await api.delete(`/api/v1/probes/${probe.id}`, write)).status()).toBe(204);
  expect((await api.delete(`/api/v1/services/${probe.service_id}`, write)).status()).toBe(204);
  expect(errors).toEqual([]);
});
