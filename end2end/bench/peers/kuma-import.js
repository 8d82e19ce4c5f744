// Uptime Kuma's first-run set-up and sign-in, then N HTTP monitors through its backup import
// (socket.io event "uploadBackup", mode "keep"), in batches spread over one interval so that
// their checks spread over it too. Kuma's own "add" event re-sends the whole monitor list after
// each monitor: 1,000 of them take about 15 minutes; the import takes about one.
// Usage: node kuma-import.js URL USER PASSWORD N TARGET_URL [INTERVAL_S] [BATCHES]
// NODE_PATH must name Kuma's node_modules (socket.io-client comes from there).
const { io } = require('socket.io-client');

const [url, user, password, nArg, target, intervalArg, batchesArg] = process.argv.slice(2);
const n = Number(nArg);
const interval = Number(intervalArg ?? 60);
const batches = Number(batchesArg ?? 20);
const socket = io(url, { transports: ['websocket'], reconnection: false });
const call = (event, ...args) => new Promise((resolve) => socket.emit(event, ...args, resolve));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

socket.on('connect_error', (e) => {
  console.error('cannot reach Uptime Kuma:', e.message);
  process.exit(2);
});
socket.on('connect', async () => {
  if (await call('needSetup')) {
    const made = await call('setup', user, password);
    if (!made.ok) throw new Error(`setup: ${JSON.stringify(made)}`);
  }
  const signedIn = await call('login', { username: user, password, token: '' });
  if (!signedIn.ok) throw new Error(`login: ${JSON.stringify(signedIn)}`);
  const per = Math.ceil(n / batches);
  for (let first = 1; first <= n; first += per) {
    const started = Date.now();
    const monitorList = [];
    for (let i = first; i < first + per && i <= n; i++) {
      // The fields Kuma's import needs (its editor's defaults); invertKeyword has no default in
      // this version's schema.
      monitorList.push({
        name: `m${String(i).padStart(4, '0')}`, type: 'http', method: 'GET', url: `${target}?m=${i}`,
        interval, retryInterval: interval, resendInterval: 0, maxretries: 0, timeout: 48,
        ignoreTls: false, upsideDown: false, invertKeyword: false, maxredirects: 10,
        dns_resolve_type: 'A', dns_resolve_server: '127.0.0.1', accepted_statuscodes: ['200-299'],
        active: 1, tags: [], notificationIDList: {},
      });
    }
    const backup = { version: '1.23.0', notificationList: [], proxyList: [], monitorList };
    const done = await call('uploadBackup', JSON.stringify(backup), 'keep');
    if (!done.ok) throw new Error(`import: ${JSON.stringify(done)}`);
    const wait = (interval * 1000) / batches - (Date.now() - started);
    if (first + per <= n && wait > 0) await sleep(wait);
  }
  socket.close();
  process.exit(0);
});
process.on('unhandledRejection', (e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
