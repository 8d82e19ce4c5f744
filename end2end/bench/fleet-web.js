// The browser's part of `triage bench fleet`, in headless Chromium while the fleet runs:
//   1. the overview cold (fresh context each time): first contentful paint, and hydrated;
//   2. on the open overview: typing a filter, and turning the page with `n`, until the new tiles show;
//   3. a service page cold, until its three charts are drawn;
//   4. live updates on a busy service's page (bench/live-latency.js).
// Usage: node bench/fleet-web.js <base url> <service name> [live seconds]
// The session cookie comes in TRIAGE_COOKIE; the busy service's name in TRIAGE_LIVE_SERVICE.
const { execFileSync } = require('node:child_process');
const { chromium } = require('@playwright/test');

const q = (values, p) => {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((v.length * p) / 100) - 1))];
};
const line = (label, values, target) =>
  console.log(`${label}: p50 ${q(values, 50).toFixed(0)} ms, max ${q(values, 100).toFixed(0)} ms over ${values.length} (target ${target})`);

(async () => {
  const [base, service, liveSecs = '60'] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const open = async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addCookies([{ name: 'triage_session', value: process.env.TRIAGE_COOKIE ?? '', url: base }]);
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log('page error:', e.message));
    return { context, page };
  };

  const list = await (await fetch(`${base}/api/v1/services`, { headers: { cookie: `triage_session=${process.env.TRIAGE_COOKIE}` } })).json();
  const fleet = list.map((s) => s.name).filter((n) => n.startsWith('fleet-0') || n.startsWith('fleet-1'));
  const filters = [1, 3, 5, 7, 9].map((k) => fleet[Math.floor((fleet.length * k) / 10)]);

  // 1. The overview, cold.
  const paints = [];
  const hydrated = [];
  let htmlBytes = 0;
  let services = 0;
  for (let i = 0; i < 5; i++) {
    const { context, page } = await open();
    const res = await page.goto(`${base}/`, { waitUntil: 'commit' });
    await page.waitForFunction(() => document.body?.dataset.hydrated === 'true' && document.querySelector('li.tile'), null, {
      timeout: 60_000,
      polling: 'raf',
    });
    const t = await page.evaluate(() => ({
      now: performance.now(),

      summary: document.querySelector('.summary-line')?.textContent.split(' · ')[0],
    }));
    // The paint entry may be queued a frame after the tiles show: wait for it.
    const fcp = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const seen = performance.getEntriesByName('first-contentful-paint')[0];
          if (seen) return resolve(seen.startTime);
          new PerformanceObserver((list) => {
            const e = list.getEntries().find((x) => x.name === 'first-contentful-paint');
            if (e) resolve(e.startTime);
          }).observe({ type: 'paint', buffered: true });
        }),
    );
    htmlBytes = (await res.body()).length;
    services = t.summary;
    paints.push(fcp);
    hydrated.push(t.now);
    if (i < 4) await context.close();
    else {
      // 2. Interaction on this open page.
      const filter = [];
      for (const name of filters) {
        filter.push(
          await page.evaluate(async (name) => {
            const input = document.getElementById('service-filter');
            const t0 = performance.now();
            input.value = name;
            input.dispatchEvent(new Event('input', { bubbles: true }));
            for (;;) {
              await new Promise((r) => requestAnimationFrame(r));
              const names = [...document.querySelectorAll('li.tile .tile-name')].map((e) => e.textContent);
              if (names.length > 0 && names.every((n) => n.includes(name))) return performance.now() - t0;
              if (performance.now() - t0 > 60_000) throw new Error(`filter ${name} not shown in 60 s`);
            }
          }, name),
        );
      }
      line(`overview filter typed → matching tiles shown (${services})`, filter, '≤ 100 ms');
      await page.evaluate(() => {
        const input = document.getElementById('service-filter');
        input.value = '';
        input.dispatchEvent(new Event('input', { bubbles: true }));
        input.blur();
      });
      await page.waitForFunction(() => document.querySelectorAll('li.tile').length > 1 && document.querySelector('#overview-meta')?.dataset.page === '1', null, { timeout: 60_000 });
      const turns = [];
      for (const key of ['n', 'n', 'n', 'p', 'p']) {
        turns.push(
          await page.evaluate(async (key) => {
            const meta = () => document.querySelector('#overview-meta');
            const from = Number(meta().dataset.page);
            const want = String(key === 'n' ? from + 1 : from - 1);
            const t0 = performance.now();
            document.body.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
            for (;;) {
              await new Promise((r) => requestAnimationFrame(r));
              if (meta()?.dataset.page === want) return performance.now() - t0;
              if (performance.now() - t0 > 60_000) throw new Error(`page ${want} not shown in 60 s`);
            }
          }, key),
        );
      }
      line('overview page turned (n / p) → next tiles shown', turns, '≤ 100 ms');
      await context.close();
    }
  }
  console.log(`overview SSR page: ${htmlBytes} bytes of HTML (${services})`);
  line('overview cold: first contentful paint', paints, '≤ 1000 ms');
  line('overview cold: hydrated, tiles shown', hydrated, 'first paint ≤ 1000 ms');

  // 3. A service page, cold.
  const svc = list.find((s) => s.name === service);
  if (!svc) throw new Error(`no service named ${service}`);
  const pages = [];
  for (let i = 0; i < 5; i++) {
    const { context, page } = await open();
    await page.goto(`${base}/services/${svc.id}`, { waitUntil: 'commit' });
    await page.waitForFunction(
      () => document.body?.dataset.hydrated === 'true' && document.querySelectorAll('figure.chart svg').length >= 3,
      null,
      { timeout: 60_000, polling: 'raf' },
    );
    pages.push(await page.evaluate(() => performance.now()));
    await context.close();
  }
  line(`service page cold (${service}): hydrated, three charts drawn`, pages, '≤ 300 ms');
  await browser.close();

  // 4. Live updates, on the busy service's page.
  const out = execFileSync('node', ['bench/live-latency.js', base, process.env.TRIAGE_LIVE_SERVICE ?? service, liveSecs], {
    env: { ...process.env, TRIAGE_LIVE_TARGET_MS: '200' },
  });
  process.stdout.write(`live updates: ${out}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
