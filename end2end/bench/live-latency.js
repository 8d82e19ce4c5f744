// From a probe result finishing to it showing on an open service page, in headless Chromium.
// The page (range 15m, following live) listens to the same event stream it updates from; each
// `result` event names its request id and when the check finished (start + total time, server
// clock = this machine's clock). A MutationObserver notes when that request id first appears in
// the page: the recent-results table and the three charts are rendered from the same refetched
// view in the same pass, so that moment is when the point is on the chart.
// Usage: node bench/live-latency.js <base url> <service name> [seconds]
const { chromium } = require('@playwright/test');

(async () => {
  const [base, service, secs = '60'] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
  // Signed in as run.sh's bench user (its session cookie comes through the environment).
  await page.context().addCookies([{ name: 'triage_session', value: process.env.TRIAGE_COOKIE ?? '', url: base }]);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const services = await (await page.request.get(`${base}/api/v1/services`)).json();
  const svc = services.find((s) => s.name === service);
  if (!svc) throw new Error(`no service named ${service}`);
  await page.goto(`${base}/services/${svc.id}?range=15m`);
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.waitForFunction(() => document.querySelector('.live')?.textContent === '● live');
  const samples = await page.evaluate(
    async ({ id, ms }) => {
      const finished = new Map();
      const seen = new Map();
      const source = new EventSource(`/api/v1/events?service_id=${id}`);
      source.addEventListener('result', (e) => {
        const r = JSON.parse(e.data);
        finished.set(r.request_id, Date.parse(r.at) + r.total_us / 1000);
      });
      const look = () => {
        const now = performance.timeOrigin + performance.now();
        for (const code of document.querySelectorAll('td.request-id code')) {
          const id = code.textContent;
          if (!seen.has(id)) seen.set(id, now);
        }
      };
      look();
      const initial = new Set(seen.keys());
      new MutationObserver(look).observe(document.body, { childList: true, subtree: true, characterData: true });
      await new Promise((r) => setTimeout(r, ms));
      source.close();
      const out = [];
      for (const [id, end] of finished) {
        if (seen.has(id) && !initial.has(id)) out.push(seen.get(id) - end);
      }
      return { events: finished.size, latencies: out };
    },
    { id: svc.id, ms: Number(secs) * 1000 },
  );
  const l = samples.latencies.sort((a, b) => a - b);
  const q = (p) => l[Math.min(l.length - 1, Math.ceil((l.length * p) / 100) - 1)];
  console.log(
    `${samples.events} results of ${service} in ${secs} s; ${l.length} seen on the page: ` +
      `p50 ${q(50).toFixed(0)} ms, p95 ${q(95).toFixed(0)} ms, p99 ${q(99).toFixed(0)} ms, max ${l[l.length - 1].toFixed(0)} ms (target p99 ≤ ${process.env.TRIAGE_LIVE_TARGET_MS ?? 500} ms)`,
  );
  if (errors.length) console.log('page errors:', errors);
  await browser.close();
})();
