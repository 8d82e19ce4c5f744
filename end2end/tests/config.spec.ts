import { test, expect } from '@playwright/test';
import { ADMIN, ORIGIN, demoPort, signIn, watchErrors } from './helpers';

// Setting up in the browser: an admin adds a service and an HTTP probe of the demo target with
// the forms only, runs it, fixes the assertion the run shows failing, saves, sees the tile on
// the overview, and pauses the probe; a viewer gets no edit controls and the server refuses
// the calls anyway.

test('an admin sets up a service and a probe entirely in the browser', async ({ page }) => {
  // Many pages, each a debug WASM build loaded on 2 cores.
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  await signIn(page.request, ADMIN);
  const stamp = Date.now();
  const service = `catalog-${stamp}`;
  const probe = `${service}-health`;

  // Inputs by the API field they edit (their labels also carry hints and errors).
  const field = (name: string) => page.locator(`[data-field="${name}"] input`).first();
  await page.goto('/config');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByRole('link', { name: 'Add a service' }).click();
  await expect(page.getByRole('heading', { name: 'New service' })).toBeVisible();
  // A bad value is refused next to its field, in the API's words.
  await field('name').fill(' padded');
  await page.getByRole('button', { name: 'Create and add a probe' }).click();
  await expect(page.locator('[data-field="name"] .field-error')).toContainText('without surrounding spaces');
  await field('name').fill(service);
  await field('tags').fill('e2e catalog');
  await page.getByRole('button', { name: 'Create and add a probe' }).click();

  await expect(page).toHaveURL(/\/config\/probes\/new\?service=/);
  await expect(page.getByRole('heading', { name: 'New probe' })).toBeVisible();
  await field('name').fill(probe);
  await field('url').fill(`http://127.0.0.1:${demoPort}/healthz`);
  await field('interval_secs').fill('2');
  await field('timeout_ms').fill('1000');
  // A wrong expectation, as a newcomer might write it.
  await page.getByRole('button', { name: '+ JSONPath' }).click();
  await page.getByRole('textbox', { name: 'JSONPath', exact: true }).fill('$.status');
  await page.getByLabel('Expected value').fill('healthy');

  await page.getByRole('button', { name: 'Run now' }).click();
  const trial = page.getByTestId('trial');
  await expect(trial).toHaveAttribute('data-outcome', 'down');
  await expect(page.getByTestId('trial-reason')).toContainText('JSONPath $.status is "ok", expected = "healthy"');
  await expect(trial.getByRole('table', { name: 'Phases' })).toContainText('Connect');
  // The tester tries the assertion on the body the run received.
  await expect(page.getByLabel('Sample body')).toHaveValue(/"status":"ok"/);
  await page.getByRole('button', { name: 'Try the JSONPath assertions on the sample' }).click();
  await expect(page.getByTestId('jsonpath-results')).toContainText('"ok"');
  await expect(page.getByTestId('jsonpath-results')).toContainText('fails');
  await page.screenshot({ path: 'artifacts/probe-form.png', fullPage: true });

  // Fixed from the shown reason: the run passes, with its phases.
  await page.getByLabel('Expected value').fill('ok');
  await page.getByRole('button', { name: 'Run now' }).click();
  await expect(trial).toHaveAttribute('data-outcome', 'up');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('saved')).toContainText('Saved and scheduled');
  await expect(page).toHaveURL(/\/config\/probes\/[0-9a-f-]{36}\?saved=1$/);

  // On the overview within one interval (2 s), with a state.
  await page.goto(`/?q=${service}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const tile = page.locator(`li.tile[data-service="${service}"]`);
  await expect(tile).toBeVisible();
  await expect(tile).toHaveAttribute('data-state', 'up', { timeout: 10_000 });

  // Paused from the configuration list.
  await page.goto(`/config?q=${probe}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const row = page.locator(`tr[data-probe="${probe}"]`);
  await row.getByRole('button', { name: 'Pause' }).click();
  await expect(row).toContainText('paused');
  await expect(row.getByRole('button', { name: 'Resume' })).toBeVisible();
  const list = await (await page.request.get('/api/v1/probes')).json();
  expect(list.find((p: any) => p.spec.name === probe).spec.enabled).toBe(false);
  // Resumed from the overview: its bulk actions cover the services the filter shows.
  await page.goto(`/?q=${service}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByText('Bulk actions on the services shown').click();
  page.once('dialog', (d) => {
    expect(d.message()).toContain('1 service(s) shown');
    void d.accept();
  });
  await page.getByRole('button', { name: 'Resume their probes' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'resume: 1 probe(s) changed.' })).toBeVisible();
  const after = await (await page.request.get('/api/v1/probes')).json();
  expect(after.find((p: any) => p.spec.name === probe).spec.enabled ?? true).toBe(true);
  // Probes from the server's probe file are read-only here.
  const fileRow = page.locator('tr[data-probe="shop-api"]');
  await page.goto('/config?q=shop-api');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(fileRow).toContainText('managed by file');
  await fileRow.getByRole('link', { name: 'shop-api' }).click();
  await expect(page.getByTestId('file-managed')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Save' })).toHaveCount(0);
  // The one failed request is the refused service name (a 400, by design).
  expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([]);
});

test('a viewer sees no configuration controls and the server refuses them', async ({ page, browser }) => {
  await signIn(page.request, ADMIN);
  const viewer = { email: `viewer-config-${Date.now()}@example.com`, password: 'viewer password 456' };
  const created = await page.request.post('/api/v1/users', {
    data: { email: viewer.email, password: viewer.password, role: 'viewer' },
    headers: { origin: ORIGIN },
  });
  expect(created.status()).toBe(201);
  const context = await browser.newContext({ baseURL: ORIGIN });
  const v = await context.newPage();
  await signIn(v.request, viewer);
  await v.goto('/');
  await expect(v.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(v.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Configure' })).toHaveCount(0);
  expect((await v.goto('/config'))?.status()).toBe(403);
  expect((await v.goto('/config/probes/new'))?.status()).toBe(403);
  const spec = { name: 'intruder', service: 'x', kind: 'http', url: 'http://127.0.0.1:1/' };
  const save = await v.request.post('/api/save_probe', { data: { id: null, from: null, spec }, headers: { origin: ORIGIN } });
  expect(save.status()).toBe(403);
  const bulk = await v.request.post('/api/bulk_probes', {
    data: { selection: { tag: 'checkout' }, action: 'delete' },
    headers: { origin: ORIGIN },
  });
  expect(bulk.status()).toBe(403);
  await context.close();
});
