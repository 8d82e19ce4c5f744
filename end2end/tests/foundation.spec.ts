import { test, expect } from '@playwright/test';
import { signIn, watchErrors } from './helpers';

// Every page needs a signed-in user: the page's context shares cookies with page.request.
test.beforeEach(async ({ page }) => {
  await signIn(page.request);
});

test('the overview is rendered on the server before any script runs', async ({ request }) => {
  await signIn(request);
  const res = await request.get('/');
  expect(res.status()).toBe(200);
  const html = await res.text();
  expect(html).toContain('<h1>Services</h1>');
  // `triage.js`, or `triage.<hash>.js` in a build with hashed names.
  expect(html).toMatch(/\/pkg\/triage(\.[A-Za-z0-9_-]{22})?\.js/);
});

test('the page hydrates, the theme switch works and persists, with no console errors', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Services' })).toBeVisible();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');

  const toggle = page.getByRole('button', { name: /^Theme:/ });
  await expect(toggle).toHaveText('Theme: System');
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(toggle).toHaveText('Theme: Dark');
  await page.screenshot({ path: 'artifacts/overview-dark.png', fullPage: true });

  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await expect(page.getByRole('button', { name: /^Theme:/ })).toHaveText('Theme: Light');
  await page.screenshot({ path: 'artifacts/overview-light.png', fullPage: true });

  expect(errors).toEqual([]);
});

test('client-side navigation loads the status through a server function', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const serverFn = page.waitForResponse((r) => r.url().includes('/api/get_system_status') && r.status() === 200);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Status', exact: true }).click();
  await serverFn;
  await expect(page).toHaveURL(/\/status$/);
  await expect(page.getByText('Ready: every dependency answers.')).toBeVisible();
  await expect(page.getByRole('row', { name: /database/ })).toContainText('up');

  const again = page.waitForResponse((r) => r.url().includes('/api/get_system_status') && r.status() === 200);
  await page.getByRole('button', { name: 'Check now' }).click();
  await again;
  await expect(page.locator('figure.chart svg title')).toHaveText('Database round trip');
  await page.screenshot({ path: 'artifacts/status-light.png', fullPage: true });
  await page.getByRole('button', { name: /^Theme:/ }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.screenshot({ path: 'artifacts/status-dark.png', fullPage: true });
  expect(errors).toEqual([]);
});
