import { test, expect } from '@playwright/test';
import { spawn, ChildProcess } from 'child_process';
import * as path from 'path';
import { ORIGIN, demoPort, signIn, watchErrors } from './helpers';

// A real `triage agent` process for the location "e2e-west", next to the server's own checks:
// the admin page lists it (and revokes it), the service page shows each location's state, p95
// and line, and the location picked is in the URL.
const bin = process.env.TRIAGE_E2E_BIN ?? path.resolve(__dirname, '../../target/debug/triage');

test('an agent is listed, its location charted and filtered by URL, and revoked', async ({ page }) => {
  const errors = watchErrors(page);
  await signIn(page.request);
  const api = page.request;
  const write = { headers: { origin: ORIGIN } };
  const created = await api.post('/api/v1/tokens', { data: { name: `e2e agent ${Date.now()}`, scope: 'agent' }, ...write });
  expect(created.status(), await created.text()).toBe(201);
  const { token } = await created.json();
  let agent: ChildProcess | null = null;
  try {
    agent = spawn(bin, ['agent', '--server', ORIGIN, '--location', 'e2e-west', '--probe-allow', '127.0.0.1/32'], {
      env: { ...process.env, TRIAGE_TOKEN: token },
      stdio: 'ignore',
    });
    const service = await api.post('/api/v1/services', { data: { name: 'regions' }, ...write });
    expect([201, 409]).toContain(service.status());
    const res = await api.post('/api/v1/probes', {
      data: {
        name: `regions-${Date.now()}`,
        service: 'regions',
        kind: 'http',
        url: `http://127.0.0.1:${demoPort}/healthz`,
        interval_secs: 1,
        timeout_ms: 800,
        locations: ['local', 'e2e-west'],
      },
      ...write,
    });
    expect(res.status(), await res.text()).toBe(201);
    const probe = await res.json();

    // Both locations report and confirm up.
    await expect
      .poll(async () => (await (await api.get(`/api/v1/probes/${probe.id}/locations`)).json()).map((l: any) => l.state).join(','), {
        timeout: 20_000,
      })
      .toBe('up,up');

    await page.goto('/admin');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    const row = page.locator('tr[data-agent="e2e-west"]').first();
    await expect(row).toContainText('connected');
    await expect(row).toContainText(/\d+ ms/);

    await page.goto(`/services/${probe.service_id}`);
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByRole('heading', { name: 'Locations' })).toBeVisible();
    const table = page.locator('table[aria-labelledby="locations"]');
    await expect(table.locator('tr[data-location="e2e-west"]')).toContainText('up');
    await expect(table.locator('tr[data-location="local"]')).toContainText('up');
    await expect(page.getByTestId('location-chart').locator('svg')).toContainText('e2e-west');

    // Picking a location puts it in the URL; the results listed are that location's only.
    await page.getByRole('navigation', { name: 'Location' }).getByRole('link', { name: 'e2e-west' }).click();
    await expect(page).toHaveURL(/location=e2e-west/);
    const results = page.getByRole('table', { name: 'Recent results' });
    await expect(results.locator('tbody tr').first()).toBeVisible();
    const places = await results.locator('tbody tr td:nth-child(2)').allInnerTexts();
    expect(places.length).toBeGreaterThan(0);
    expect(new Set(places)).toEqual(new Set(['e2e-west']));
    await expect(table.locator('tr[data-location="local"]')).toHaveCount(0);
    // The filter survives a range change.
    await page.getByRole('navigation', { name: 'Time range' }).getByRole('link', { name: '15m' }).click();
    await expect(page).toHaveURL(/range=15m.*location=e2e-west/);
    await page.screenshot({ path: 'artifacts/locations.png', fullPage: true });

    // Revoked from the admin page: listed as such.
    await page.goto('/admin');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await page.locator('tr[data-agent="e2e-west"]').first().getByRole('button', { name: 'Revoke' }).click();
    await expect(page.locator('tr[data-agent="e2e-west"]').first()).toContainText('revoked');

    expect((await api.delete(`/api/v1/probes/${probe.id}`, write)).status()).toBe(204);
    expect((await api.delete(`/api/v1/services/${probe.service_id}`, write)).status()).toBe(204);
    expect(errors).toEqual([]);
  } finally {
    agent?.kill('SIGTERM');
  }
});
