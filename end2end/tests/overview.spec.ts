import { test, expect } from '@playwright/test';
import { ORIGIN, demoPort, signIn, watchErrors } from './helpers';

// Triage watches itself out of the box, so a fresh instance has one service: `triage`.

// Every page needs a signed-in user: the page's context shares cookies with page.request.
test.beforeEach(async ({ page }) => {
  await signIn(page.request);
});

test('the overview shows each service as a tile that turns up once its probes report', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const tile = page.locator('li.tile[data-service="triage"]');
  await expect(tile).toBeVisible();
  await expect(tile.getByRole('heading', { name: 'triage' })).toBeVisible();
  // Its probes run every 15 s; the open page refreshes every 5 s without a reload.
  await expect(tile).toHaveAttribute('data-state', 'up', { timeout: 45_000 });
  await expect(tile).toContainText('✔ up');
  await expect(tile).toContainText('3 probes');
  await page.screenshot({ path: 'artifacts/overview-tiles.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the overview is live: events from the server refetch it without a reload', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.live')).toHaveText('● live');
  // Triage's own probes report every few seconds; each burst of results triggers one refetch
  // (the 30 s safety poll would be too late for this window).
  const refetch = await page.waitForResponse((r) => r.url().includes('/api/v1/overview.html') && r.status() === 200, {
    timeout: 25_000,
  });
  expect(refetch.ok()).toBe(true);
  await expect(page.locator('li.tile[data-service="triage"]')).toBeVisible();
  expect(errors).toEqual([]);
});

test('the filter lives in the URL, so a link or a reload reproduces the view', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const filter = page.getByRole('searchbox', { name: 'Filter services' });
  await filter.fill('no-such-service');
  await expect(page).toHaveURL(/\?q=no-such-service$/);
  await expect(page.locator('li.tile')).toHaveCount(0);
  await expect(page.getByText(/^0 of \d+ services/)).toBeVisible();

  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('searchbox', { name: 'Filter services' })).toHaveValue('no-such-service');
  await expect(page.locator('li.tile')).toHaveCount(0);

  await page.getByRole('searchbox', { name: 'Filter services' }).fill('TRI');
  await expect(page).toHaveURL(/\?q=TRI$/);
  await expect(page.locator('li.tile[data-service="triage"]')).toBeVisible();
  await page.getByRole('combobox', { name: 'Sort' }).selectOption('name');
  await expect(page).toHaveURL(/\?q=TRI&sort=name$/);
  expect(errors).toEqual([]);
});

test('counts by state and tag narrow the overview, a page holds 100 tiles, and keys turn the pages', async ({
  page,
}) => {
  // 240 API calls to set up and clean up, on a debug build.
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  // 120 services without probes (no data yet, so they sort after every service with a state),
  // tagged to be found; removed at the end so later tests see the usual fleet.
  const ids: string[] = [];
  for (let i = 0; i < 120; i++) {
    const res = await page.request.post('/api/v1/services', {
      data: { name: `fleet-${String(i).padStart(3, '0')}`, tags: ['e2e-fleet'] },
      headers: { origin: ORIGIN },
    });
    expect(res.status(), await res.text()).toBe(201);
    ids.push((await res.json()).id);
  }
  try {
    await page.goto('/');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    const states = page.getByRole('navigation', { name: 'States' });
    await expect(states.getByRole('link', { name: /^All \d+/ })).toHaveAttribute('aria-current', 'true');
    await expect(page.locator('li.tile')).toHaveCount(100);
    await expect(page.getByRole('navigation', { name: 'Pages' })).toContainText(/Page 1 of \d+/);

    // A tag narrows the view to its services, with their count.
    const tags = page.getByRole('navigation', { name: 'Tags' });
    await expect(tags.getByRole('link', { name: /^e2e-fleet 120/ })).toBeVisible();
    await tags.getByRole('link', { name: /^e2e-fleet/ }).click();
    await expect(page).toHaveURL(/\?tag=e2e-fleet$/);
    await expect(page.getByText(/^120 of \d+ services · showing 1–100/)).toBeVisible();
    await expect(page.locator('li.tile[data-service="fleet-000"]')).toBeVisible();

    // N turns the page, P turns it back; the page is in the URL.
    await page.locator('h1').click();
    await page.keyboard.press('n');
    await expect(page).toHaveURL(/\?tag=e2e-fleet&page=2$/);
    await expect(page.locator('li.tile')).toHaveCount(20);
    await expect(page.locator('li.tile[data-service="fleet-119"]')).toBeVisible();
    await page.reload();
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.locator('li.tile')).toHaveCount(20);
    await page.keyboard.press('p');
    await expect(page).toHaveURL(/\?tag=e2e-fleet$/);

    // A state narrows further: these services have no data yet, none is up.
    await expect(states.getByRole('link', { name: /^No data 120/ })).toBeVisible();
    await states.getByRole('link', { name: /^Up / }).click();
    await expect(page).toHaveURL(/\?state=up&tag=e2e-fleet$/);
    await expect(page.locator('li.tile')).toHaveCount(0);
    await expect(page.getByText(/^0 of \d+ services/)).toBeVisible();

    // A second click on the chosen tag widens the view again; `/` goes to the filter.
    await page.getByRole('navigation', { name: 'Tags' }).getByRole('link', { name: /^e2e-fleet/ }).click();
    await expect(page).toHaveURL(/\?state=up$/);
    await expect(page.locator('li.tile[data-state="up"]').first()).toBeVisible({ timeout: 45_000 });
    await expect(page.locator('li.tile:not([data-state="up"])')).toHaveCount(0);
    await page.keyboard.press('/');
    await expect(page.getByRole('searchbox', { name: 'Filter services' })).toBeFocused();
    await page.screenshot({ path: 'artifacts/overview-facets.png', fullPage: true });
  } finally {
    for (let i = 0; i < ids.length; i += 20) {
      const gone = await Promise.all(
        ids.slice(i, i + 20).map((id) => page.request.delete(`/api/v1/services/${id}`, { headers: { origin: ORIGIN } })),
      );
      expect(gone.map((r) => r.status())).toEqual(gone.map(() => 204));
    }
  }
  expect(errors).toEqual([]);
});

test('a service page stacks its charts, and its range lives in the URL', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('li.tile[data-service="triage"]').getByRole('link', { name: 'triage' }).click();
  await expect(page).toHaveURL(/\/services\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('triage');
  for (const title of ['Latency p50 / p95 / p99', 'Error rate', 'Connection pool']) {
    await expect(page.locator('figure.chart svg title', { hasText: title })).toHaveCount(1);
  }
  await expect(page.getByRole('row', { name: /triage-metrics/ })).toContainText('metrics');
  await expect(page.locator('.live')).toHaveText('● live');
  await page.getByRole('navigation', { name: 'Time range' }).getByRole('link', { name: '15m' }).click();
  await expect(page).toHaveURL(/\?range=15m$/);
  await expect(page.getByRole('link', { name: '15m' })).toHaveAttribute('aria-current', 'true');
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('link', { name: '15m' })).toHaveAttribute('aria-current', 'true');
  await expect(page.locator('figure.chart svg desc').nth(2)).toContainText(/in use \d+ of 10/);
  await page.screenshot({ path: 'artifacts/service-light.png', fullPage: true });
  await page.getByRole('button', { name: /^Theme:/ }).click();
  await page.screenshot({ path: 'artifacts/service-dark.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the demo service turns down when it becomes unready, and its charts show errors and a full pool', async ({
  page,
  request,
}) => {
  const errors = watchErrors(page);
  const control = (scenario: string) => request.post(`http://127.0.0.1:${demoPort + 1}/control/${scenario}`);
  expect((await control('healthy')).ok()).toBe(true);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const tile = page.locator('li.tile[data-service="shop"]');
  await expect(tile).toHaveAttribute('data-state', 'up', { timeout: 30_000 });

  // Readiness answers 503 with the database down: two failures confirm it, the tile turns red
  // through live events, without a reload.
  expect((await control('unready')).ok()).toBe(true);
  await expect(tile).toHaveAttribute('data-state', 'down', { timeout: 20_000 });
  await expect(tile).toContainText('✖ down');
  await page.screenshot({ path: 'artifacts/overview-shop-down.png', fullPage: true });

  await tile.getByRole('link', { name: 'shop' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('shop');
  await expect(page.getByRole('table', { name: 'Readiness components' }).getByRole('row', { name: /database/ })).toContainText(
    'down',
  );

  // A third of API calls fail: the error-rate chart rises (the page refetches on live events).
  expect((await control('errors')).ok()).toBe(true);
  await expect(page.locator('figure.chart svg desc').nth(1)).not.toContainText('latest error rate 0.0 %', {
    timeout: 20_000,
  });
  // The pool exhausted: in use at its maximum with requests waiting.
  expect((await control('pool')).ok()).toBe(true);
  await expect(page.locator('figure.chart svg desc').nth(2)).toContainText(/in use 10 of 10, [1-9]\d* waiting/, {
    timeout: 20_000,
  });
  await page.screenshot({ path: 'artifacts/service-shop-pool.png', fullPage: true });
  expect((await control('healthy')).ok()).toBe(true);
  expect(errors).toEqual([]);
});

test('dragging across a chart zooms: the window goes into the URL, the page pauses, and a link reproduces it', async ({
  page,
  context,
}) => {
  const errors = watchErrors(page);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('li.tile[data-service="shop"]').getByRole('link', { name: 'shop' }).click();
  // The last 15 minutes: the instance started moments ago, and the zoom must take in data.
  await page.getByRole('navigation', { name: 'Time range' }).getByRole('link', { name: '15m' }).click();
  await expect(page).toHaveURL(/\?range=15m$/);
  await expect(page.locator('.live')).toHaveText('● live');
  // A drag zooms within the window the charts show, which follows the URL once its data is in.
  const shownSpan = async () => {
    const stack = page.locator('.stack').first();
    return Number(await stack.getAttribute('data-to-ms')) - Number(await stack.getAttribute('data-from-ms'));
  };
  await expect.poll(shownSpan).toBeLessThan(16 * 60_000 + 1);

  // The shared cursor: hovering one chart shows the values at that time for all three.
  // Live refetches redraw the charts several times a second: go back to the top (where the
  // charts are) and read a position; the pointer works on coordinates, not on one element.
  const chart = page.locator('figure.chart .chart-svg').first();
  await page.evaluate(() => window.scrollTo(0, 0));
  let box: { x: number; y: number; width: number; height: number } | null = null;
  await expect(async () => {
    box = await chart.boundingBox();
    expect(box).not.toBeNull();
  }).toPass();
  box = box!;
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.9, y);
  await expect(page.locator('.cursor-line')).toHaveCount(1);
  await expect(page.getByRole('tooltip')).toContainText(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);

  // Drag from 30 % to 90 % of the width.
  // From the middle of the time axis to its right end (the plot spans 56…948 of 960 px).
  await page.mouse.move(box.x + box.width * 0.5, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 4 });
  await expect(page.locator('.zoom-selection')).toHaveCount(1);
  await page.mouse.move(box.x + box.width * 0.985, y, { steps: 4 });
  await page.mouse.up();
  await expect(page).toHaveURL(/\?from=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ&to=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  await expect(page.getByRole('status').filter({ hasText: 'paused' })).toHaveText('❚❚ paused · fixed range');
  const zoomed = new URL(page.url());
  const span = Date.parse(zoomed.searchParams.get('to')!) - Date.parse(zoomed.searchParams.get('from')!);
  // About 52 % of the 15 minutes shown before (7.8 min).
  expect(span).toBeGreaterThan(6.5 * 60_000);
  expect(span).toBeLessThan(9 * 60_000);
  // Paused, so once the new window's data is in nothing redraws the charts.
  await expect(page.locator('section.page')).toHaveAttribute('aria-busy', 'false');

  // One click copies a request id of a recent result. Done while paused: live, the table is
  // redrawn several times a second and a click at a button's position can land on a newer row.
  const results = page.getByRole('table', { name: 'Recent results' });
  const label = (await results.getByRole('button', { name: /^Copy request id / }).first().getAttribute('aria-label'))!;
  const id = label.replace('Copy request id ', '');
  const copy = results.getByRole('button', { name: label, exact: true });
  await copy.click();
  await expect(copy).toHaveText('copied ✓');
  // The clipboard write is a promise the page does not await: poll until it has landed.
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(id);
  // The time axis (a late-committed check may still add to the figures near the window's end).
  const timeAxis = async (p: typeof page) =>
    ((await p.locator('figure.chart svg').first().textContent()) ?? '').match(/\d\d(?:-\d\d)? ?\d\d:\d\d(?: UTC)?/g);
  const axis = await timeAxis(page);

  // The link reproduces the view: same window, same axis labels, still paused.
  const other = await context.newPage();
  await other.goto(page.url());
  await expect(other.locator('body')).toHaveAttribute('data-hydrated', 'true');
  expect(await timeAxis(other)).toEqual(axis);
  await expect(other.getByRole('status').filter({ hasText: 'paused' })).toBeVisible();
  await other.close();

  // A custom range through the form; a reversed one is refused with the field named.
  await page.getByText('Custom', { exact: true }).click();
  const fromValue = await page.getByLabel('From (UTC)').inputValue();
  await page.getByLabel('To (UTC)').fill(fromValue.replace(/T\d\d/, 'T00').replace(/:\d\d$/, ':00'));
  await page.getByLabel('From (UTC)').fill(fromValue.replace(/T\d\d/, 'T23'));
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toContainText('to: must be at least 60 s after from');

  // Back to live.
  await page.getByRole('link', { name: 'Back to live' }).click();
  await expect(page).toHaveURL(/\?range=1h$/);
  await expect(page.locator('.live')).toHaveText('● live');
  await page.screenshot({ path: 'artifacts/service-zoomed-back-to-live.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a tag is part of the URL, and each tile carries a p95 sparkline', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/?tag=checkout');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const tags = page.getByRole('navigation', { name: 'Tags' });
  await expect(tags.getByRole('link', { name: /^checkout 1\b/ })).toHaveAttribute('aria-current', 'true');
  await expect(page.locator('li.tile[data-service="shop"]')).toBeVisible();
  await expect(page.locator('li.tile')).toHaveCount(1);
  await expect(page.locator('li.tile[data-service="shop"] .sparkline svg title')).toHaveText('p95 trend');
  await expect(page.locator('li.tile[data-service="shop"] .sparkline svg desc')).toContainText(
    /p95 over the last hour, between \d+ and \d+ ms/,
  );
  // Triage watches itself under its own tag.
  await tags.getByRole('link', { name: /^triage 1\b/ }).click();
  await expect(page).toHaveURL(/\?tag=triage$/);
  await expect(page.locator('li.tile[data-service="triage"]')).toBeVisible();
  await expect(page.locator('li.tile')).toHaveCount(1);
  await tags.getByRole('link', { name: /^triage/ }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('li.tile[data-service="shop"]')).toBeVisible();
  expect(errors).toEqual([]);
});

test('the latency chart switches to phases, and the choice stays in the URL across ranges', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('li.tile[data-service="shop"]').getByRole('link', { name: 'shop' }).click();
  const latencyView = page.getByRole('navigation', { name: 'Latency view' });
  await latencyView.getByRole('link', { name: 'phases' }).click();
  await expect(page).toHaveURL(/\?range=1h&lat=phases$/);
  const first = page.locator('figure.chart svg').first();
  await expect(first.locator('title')).toHaveText('Latency by phase (mean)');
  await expect(first.locator('desc')).toContainText(/latest means: DNS [\d.]+, connect [\d.]+, TLS [\d.]+, TTFB [\d.]+/);
  await page.getByRole('navigation', { name: 'Time range' }).getByRole('link', { name: '15m' }).click();
  await expect(page).toHaveURL(/\?range=15m&lat=phases$/);
  await expect(first.locator('title')).toHaveText('Latency by phase (mean)');
  await latencyView.getByRole('link', { name: 'percentiles' }).click();
  await expect(page).toHaveURL(/\?range=15m$/);
  await expect(first.locator('title')).toHaveText('Latency p50 / p95 / p99');

  // The same moves from the keyboard; keys typed into a field stay in the field.
  await page.keyboard.press('p');
  await expect(page).toHaveURL(/\?range=15m&lat=phases$/);
  await page.screenshot({ path: 'artifacts/service-phases.png', fullPage: true });
  await page.keyboard.press('6');
  await expect(page).toHaveURL(/\?range=30d&lat=phases$/);
  await page.keyboard.press('l');
  await expect(page).toHaveURL(/\?range=1h&lat=phases$/);
  // Typed into a field, "1" does not navigate: after it, one key press adds exactly one entry.
  const entries = await page.evaluate(() => history.length);
  await page.getByText('Custom', { exact: true }).click();
  await page.getByLabel('From (UTC)').press('1');
  await page.getByRole('heading', { level: 1 }).click();
  await page.keyboard.press('3');
  await expect(page).toHaveURL(/\?range=6h&lat=phases$/);
  expect(await page.evaluate(() => history.length)).toBe(entries + 1);
  expect(errors).toEqual([]);
});

test('an admin sets an objective on the service page: errors by field, then its budget and chart', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('li.tile[data-service="triage"]').getByRole('link', { name: 'triage' }).click();
  await expect(page).toHaveURL(/\/services\/[0-9a-f-]{36}$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByText('No objective set.')).toBeVisible();

  const form = page.getByRole('form', { name: 'Service level objective' });
  await page.getByText('Set the objective').click();
  // The form reads the current objective first; until then nothing can be typed or saved.
  await expect(form.getByRole('button', { name: 'Save objective' })).toBeEnabled();
  const availability = form.getByLabel('Availability target (%)');
  await expect(availability).toHaveValue('99.9');
  await availability.fill('100');
  await form.getByRole('button', { name: 'Save objective' }).click();
  await expect(form.locator('[data-field="availability_target"]')).toContainText('above 0 and below 100');
  await availability.fill('99.5');
  await form.getByLabel('Latency threshold (ms)').fill('500');
  await form.getByLabel('Latency target (%)').fill('90');
  await form.getByRole('button', { name: 'Save objective' }).click();
  await expect(form.getByRole('status')).toHaveText('Saved.');

  // The page refetches: the objective's figures and its budget chart replace the hint.
  const table = page.getByRole('table', { name: 'Service level objective' });
  await expect(table.getByRole('row', { name: /Availability/ })).toContainText('99.5 %');
  await expect(table.getByRole('row', { name: /Latency/ }).first()).toContainText('90 %');
  await expect(page.locator('.budget-chart svg title')).toHaveText('Error budget left');
  await expect(page.getByText('No objective set.')).toHaveCount(0);

  await form.getByRole('button', { name: 'Remove' }).click();
  await expect(form.getByRole('status')).toHaveText('Removed.');
  await expect(page.getByText('No objective set.')).toBeVisible();
  // The one failed request is the refused target (a 400, by design).
  expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([]);
});
