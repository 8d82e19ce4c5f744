// Cold load of the overview in headless Chromium: from navigation to every tile rendered and the
// page hydrated (interactive), with a fresh browser context (empty cache) per run.
// Usage: node bench/overview-load.js http://127.0.0.1:3956/ [runs] [expected tiles]
const { chromium } = require('@playwright/test');

(async () => {
  const url = process.argv[2];
  const runs = Number(process.argv[3] ?? 7);
  const expected = Number(process.argv[4] ?? 2000);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const times = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    // Signed in as run.sh's bench user (its session cookie comes through the environment).
    await context.addCookies([{ name: 'triage_session', value: process.env.TRIAGE_COOKIE ?? '', url }]);
    const page = await context.newPage();
    const errors = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    let bytes = 0;
    page.on('response', async (r) => {
      const len = Number((await r.allHeaders())['content-length'] ?? 0);
      bytes += len;
    });
    await page.goto(url, { waitUntil: 'commit' });
    await page.waitForFunction(
      (n) => document.body?.dataset.hydrated === 'true' && document.querySelectorAll('li.tile').length >= n,
      expected,
      { timeout: 30_000, polling: 'raf' },
    );
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { ready: performance.now(), html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd };
    });
    const tiles = await page.locator('li.tile').count();
    if (errors.length) console.log('console errors:', errors);
    times.push(t.ready);
    console.log(
      `run ${i + 1}: ${tiles} tiles rendered and hydrated in ${t.ready.toFixed(0)} ms ` +
        `(HTML received ${t.html.toFixed(0)} ms, DOMContentLoaded ${t.dcl.toFixed(0)} ms)`,
    );
    await context.close();
  }
  times.sort((a, b) => a - b);
  console.log(`median ${times[Math.floor(times.length / 2)].toFixed(0)} ms, worst ${times[times.length - 1].toFixed(0)} ms over ${runs} cold loads (target ≤ 1500 ms)`);
  await browser.close();
})();
