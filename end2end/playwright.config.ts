import { defineConfig } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { demoPort } from './tests/helpers';

// The app under test: the binary and site built by cargo-leptos, on a fresh embedded PostgreSQL.
const port = Number(process.env.TRIAGE_E2E_PORT ?? 3917);
// A second replica on the first one's PostgreSQL (its private socket): every test runs against a
// replica set of two, and replicas.spec.ts watches one replica show what the other checked.
const replicaPort = Number(process.env.TRIAGE_E2E_REPLICA_PORT ?? 3920);
const bin = process.env.TRIAGE_E2E_BIN ?? path.resolve(__dirname, '../target/debug/triage');
const siteRoot = process.env.TRIAGE_E2E_SITE ?? path.resolve(__dirname, '../target/site');
// Workers load this file again: they inherit the directory through the environment instead of
// making their own (the tests read the server's set-up token file from it).
const dataDir =
  process.env.TRIAGE_E2E_DATA ?? (process.env.TRIAGE_E2E_DATA = fs.mkdtempSync(path.join(os.tmpdir(), 'triage-e2e-')));

// "shop", the demo target, probed through a probe file: its scenario is switched by the tests on
// its control port (the demo port + 1). Loopback is allowlisted, as an admin would for it.
const probeFile = path.join(dataDir, 'probes.toml');
const shop = `http://127.0.0.1:${demoPort}`;
fs.writeFileSync(
  probeFile,
  `[[service]]
name = "shop"
criticality = "high"
tags = ["checkout"]

[[probe]]
name = "shop-api"
service = "shop"
kind = "http"
url = "${shop}/api/products"
interval_secs = 1
timeout_ms = 800
failures_to_down = 2
incidents = { healthy_for_secs = 4 }

[[probe]]
name = "shop-ready"
service = "shop"
kind = "readiness"
url = "${shop}/readyz"
interval_secs = 1
timeout_ms = 800
failures_to_down = 2
incidents = { healthy_for_secs = 4 }

[[probe]]
name = "shop-pool"
service = "shop"
kind = "metrics"
url = "${shop}/metrics"
interval_secs = 1
timeout_ms = 800
incidents = { healthy_for_secs = 4 }
`,
);

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  // The tests run the debug build: the incident room's WASM (about 70 split chunks, 8 MB for the
  // room alone) takes 9–13 s to load and hydrate on 2 cores while Triage and its probes run.
  // Release builds are a fraction of that (docs/benchmarks.md).
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  outputDir: 'test-results',
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: [
    {
      command: `"${bin}" demo-target --addr 127.0.0.1:${demoPort}`,
      url: `http://127.0.0.1:${demoPort}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command:
        `"${bin}" serve --addr 127.0.0.1:${port} --data-dir "${dataDir}" --site-root "${siteRoot}"` +
        ` --config "${probeFile}" --probe-allow 127.0.0.0/8`,
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 120_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      // Waits for the first replica, whose embedded PostgreSQL it shares.
      command:
        `sh -c 'node "${path.join(__dirname, 'wait-ready.cjs')}" http://127.0.0.1:${port}/readyz && ` +
        `exec "${bin}" serve --addr 127.0.0.1:${replicaPort} --site-root "${siteRoot}"` +
        ` --probe-allow 127.0.0.0/8 --self-watch false'`,
      env: { DATABASE_URL: `postgres://triage@localhost/triage?host=${path.join(dataDir, 'run')}` },
      url: `http://127.0.0.1:${replicaPort}/readyz`,
      reuseExistingServer: false,
      timeout: 180_000,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
