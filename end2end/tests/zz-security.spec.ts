import { test, expect, type APIRequestContext } from '@playwright/test';
import { signIn } from './helpers';

// Runs last (files run in name order): every page the suite opened ran under the
// Content-Security-Policy, and any violation a browser reported was counted by the server.

async function violations(request: APIRequestContext): Promise<number> {
  const text = await (await request.get('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('triage_csp_violations_total '));
  return Number(line?.split(' ')[1] ?? NaN);
}

test('no page of the whole suite violated the Content-Security-Policy', async ({ request }) => {
  expect(await violations(request)).toBe(0);
});

test('a script injected into a page is blocked by the policy and reported', async ({ page }) => {
  await signIn(page.request);
  const before = await violations(page.request);
  const response = await page.goto('/');
  const policy = response?.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("'nonce-");
  expect(policy).not.toContain('unsafe-inline');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  // What an XSS would do: add an inline script without the page's nonce.
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true;';
    document.body.appendChild(s);
  });
  expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
  await expect.poll(() => violations(page.request), { timeout: 15_000 }).toBeGreaterThan(before);
});
