// Cold loads of Uptime Kuma's dashboard in headless Chromium (a fresh context per load): from
// navigation to every monitor listed, and to every listed monitor showing a heartbeat. Kuma's
// list is not virtualised, so "listed" means N rows in the DOM.
// Usage: node kuma-coldload.js URL USER PASSWORD N [RUNS]
// NODE_PATH must name Kuma's node_modules (socket.io-client and playwright-core come from there).
const { io } = require('socket.io-client');
const { chromium } = require('playwright-core');

const [url, user, password, nArg, runsArg] = process.argv.slice(2);
const n = Number(nArg);
const runs = Number(runsArg ?? 3);

// A session token, as the login form would store it.
const token = () =>
  new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false });
    socket.on('connect_error', reject);
    socket.on('connect', () =>
      socket.emit('login', { username: user, password, token: '' }, (r) => {
        socket.close();
        if (r.ok) resolve(r.token);
        else reject(new Error(JSON.stringify(r)));
      }),
    );
  });

(async () => {
  const jwt = await token();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  for (let run = 1; run <= runs; run++) {
    // Kuma hides its list on narrow screens.
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    await context.addInitScript((t) => window.localStorage.setItem('token', t), jwt);
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${url}/dashboard`, { waitUntil: 'commit' });
    await page.waitForFunction((k) => document.querySelectorAll('.monitor-list a.item').length >= k, n, {
      timeout: 300_000,
      polling: 50,
    });
    const listed = Date.now() - t0;
    await page.waitForFunction(
      (k) => [...document.querySelectorAll('.monitor-list a.item')].filter((a) => a.querySelector('.beat:not(.empty)')).length >= k,
      n,
      { timeout: 300_000, polling: 200 },
    );
    const beats = Date.now() - t0;
    console.log(JSON.stringify({ run, listed_ms: listed, with_heartbeats_ms: beats }));
    await context.close();
  }
  await browser.close();
})().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
