// Bytes on the wire for the overview's first load in headless Chromium, as the server sends them
// (Content-Encoding as negotiated, body bytes as transferred), then a second load in the same
// browser context to show what the cache keeps.
// Usage: node bench/first-load.js http://127.0.0.1:3956/
const { chromium } = require('@playwright/test');

async function load(page, url) {
  const seen = [];
  const onResponse = (r) => seen.push(r);
  page.on('response', onResponse);
  await page.goto(url, { waitUntil: 'commit' });
  // Hydration needs the JS, the WASM and the split loader; the stylesheet blocks rendering.
  await page.waitForFunction(() => document.body?.dataset.hydrated === 'true', null, { timeout: 30_000 });
  page.off('response', onResponse);
  const rows = [];
  for (const r of seen) {
    const sizes = await r.request().sizes();
    const headers = await r.allHeaders();
    rows.push({
      path: new URL(r.url()).pathname,
      status: r.status(),
      encoding: headers['content-encoding'] ?? 'identity',
      cache: headers['cache-control'] ?? '',
      // Answers from the cache report no (or negative) body sizes: nothing came over the wire.
      body: Math.max(0, sizes.responseBodySize),
    });
  }
  return rows;
}

(async () => {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addCookies([{ name: 'triage_session', value: process.env.TRIAGE_COOKIE ?? '', url }]);
  const page = await context.newPage();
  for (const [label, run] of [['first load (empty cache)', 1], ['second load (same browser)', 2]]) {
    const rows = await load(page, url);
    let assets = 0;
    let all = 0;
    console.log(`-- ${label}`);
    for (const r of rows) {
      all += r.body;
      const asset = r.path.startsWith('/pkg/');
      if (asset) assets += r.body;
      if (asset || run === 1) {
        console.log(`${String(r.status).padEnd(4)}${r.encoding.padEnd(9)}${String(r.body).padStart(9)} B  ${r.path}  [${r.cache}]`);
      }
    }
    console.log(`wasm, JS and CSS on the wire: ${assets} B (${(assets / 1000).toFixed(1)} KB); everything: ${all} B`);
  }
  await browser.close();
})();
