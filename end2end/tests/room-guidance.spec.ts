import { test, expect } from '@playwright/test';
import { ORIGIN, declareIncident, demoPort, signIn, watchErrors } from './helpers';

// Runs after the overview tests (file order): the demo target has a history by then.
const RESPONDER = { email: 'responder@example.com', password: 'e2e responder password' };

test.beforeEach(async ({ page }) => {
  await signIn(page.request);
});

test('guidance follows the signal: pool first, then slow, and recovery is confirmed', async ({ page, browser, request }) => {
  test.setTimeout(480_000);
  const errors = watchErrors(page);
  const control = (scenario: string) => request.post(`http://127.0.0.1:${demoPort + 1}/control/${scenario}`);
  const made = await page.request.post('/api/v1/users', {
    data: { email: RESPONDER.email, password: RESPONDER.password, role: 'responder' },
    headers: { origin: ORIGIN },
  });
  expect([201, 409]).toContain(made.status());
  const services = await (await page.request.get('/api/v1/services')).json();
  const shop = services.find((s: any) => s.name === 'shop');
  const id = await declareIncident(page.request, { title: 'Checkout degraded', services: [shop.id] });

  expect((await control('pool')).ok()).toBe(true);
  await page.goto(`/incidents/${id}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const first = page.locator('details.checklist').first();
  await expect(first).toHaveAttribute('data-checklist', 'pool-exhaustion', { timeout: 60_000 });
  const poolStep = first.locator('li.step[data-step="pool"]');
  await expect(poolStep).toContainText('Is the pool exhausted?');
  await expect(poolStep.locator('.evidence')).toHaveAttribute('data-status', 'fail');
  await expect(poolStep.locator('.step-chart svg')).toBeVisible();
  await expect(poolStep.locator('.step-chart svg desc')).toContainText(/in use 10 of 10/);
  await expect(page.locator('.symptom[data-kind="pool_saturated"]')).toBeVisible();
  await page.screenshot({ path: 'artifacts/guidance-pool.png', fullPage: true });

  // A responder ticks a step with a finding; the commander sees it on the timeline live.
  const other = await browser.newContext();
  const second = await other.newPage();
  await signIn(second.request, RESPONDER);
  await second.goto(`/incidents/${id}`);
  await expect(second.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const step = second.locator('details.checklist[data-checklist="pool-exhaustion"] li.step[data-step="server-connections"]');
  await step.getByLabel('Finding').fill('97 of 100 connections are the shop');
  await step.getByRole('button', { name: 'Done' }).click();
  await expect(page.locator('.entry[data-kind="observation"]')).toContainText('97 of 100 connections are the shop', {
    timeout: 10_000,
  });
  await expect(page.locator('li.step[data-step="server-connections"]').first()).toContainText(RESPONDER.email);
  await other.close();

  // Slow: the slow checklist comes first once the pool has drained.
  expect((await control('slow')).ok()).toBe(true);
  let last = '';
  const slowFirst = expect
    .poll(
      async () => {
        const g = await (await page.request.get(`/api/v1/incidents/${id}/guidance`)).json();
        // The latency evidence (p95 against its baseline) says why slowness is or is not seen.
        const latency = g.checklists
          .flatMap((c: any) => c.steps)
          .map((s: any) => s.live?.detail)
          .filter((d: any) => typeof d === 'string' && d.includes('p95'));
        last = JSON.stringify({
          symptoms: g.symptoms,
          order: g.checklists.map((c: any) => [c.id, c.score]),
          latency: [...new Set(latency)],
        });
        return g.checklists[0]?.id;
      },
      { timeout: 180_000, intervals: [2_000] },
    )
    .toBe('service-slow');
  await slowFirst.catch((e) => {
    throw new Error(`the slow checklist never came first; last guidance: ${last}\n${e}`);
  });
  await expect(page.locator('details.checklist').first()).toHaveAttribute('data-checklist', 'service-slow', {
    timeout: 20_000,
  });
  await page.screenshot({ path: 'artifacts/guidance-slow.png', fullPage: true });

  // Healthy: recovery turns green once it has held for the configured time.
  expect((await control('healthy')).ok()).toBe(true);
  await expect(page.locator('.recovery')).toHaveAttribute('data-confirmed', 'true', { timeout: 180_000 });
  await page.screenshot({ path: 'artifacts/guidance-recovered.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('admins edit a checklist in the browser: a new version, and bad TOML is refused with its line', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/admin');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByRole('button', { name: 'cache-problems' }).click();
  const editor = page.getByLabel('Checklist TOML');
  const text = await editor.inputValue();
  expect(text).toContain('[[step]]');
  await editor.fill(text.replace(/^title = ".*"$/m, 'title = "Cache trouble"'));
  await page.getByRole('button', { name: 'Save as a new version' }).click();
  await expect(page.getByRole('status')).toContainText(/Saved as version \d+/);
  await expect(page.getByRole('row', { name: /cache-problems/ })).toContainText('Cache trouble');
  const versions = await (await page.request.get('/api/v1/checklists/cache-problems')).json();
  expect(versions[0].title).toBe('Cache trouble');
  expect(versions.length).toBeGreaterThan(1);

  await page.getByRole('button', { name: 'cache-problems' }).click();
  await page.getByLabel('Checklist TOML').fill('id = "cache-problems"\ntitle = 3\n');
  await page.getByRole('button', { name: 'Save as a new version' }).click();
  await expect(page.getByRole('alert')).toContainText('line 2');
  // A refused server function answers 400 like the REST API (it used to be a 500), which the
  // browser logs; nothing else may.
  expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([]);
});
