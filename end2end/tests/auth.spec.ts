import { test, expect } from '@playwright/test';
import { ADMIN, setupToken, signIn, watchErrors } from './helpers';

const base = `http://127.0.0.1:${Number(process.env.TRIAGE_E2E_PORT ?? 3917)}`;

// This file runs first (files run in name order, one worker): the instance has no users yet.
test('first run: the set-up token creates the first admin, who signs out and in again', async ({ page }) => {
  const errors = watchErrors(page);
  const token = setupToken();
  expect(token, 'a fresh instance writes its set-up token to the data directory').toBeTruthy();

  await page.goto('/');
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Set-up token').fill('not-the-token');
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel(/^Password/).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('does not match');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');

  await page.getByLabel('Set-up token').fill(token!);
  await page.getByLabel(/^Password/).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page).toHaveURL(`${base}/`);
  await expect(page.getByRole('heading', { name: 'Services' })).toBeVisible();
  await expect(page.locator('.who')).toContainText(ADMIN.email);
  await expect(page.locator('.role-badge')).toHaveText('admin');
  expect(setupToken(), 'the spent token file is removed').toBeUndefined();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/status');
  await expect(page).toHaveURL(/\/login\?next=%2Fstatus$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill('wrong password, long enough');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${base}/status`);
  await expect(page.getByRole('heading', { name: 'Triage status' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('a viewer added by the admin sees no write controls, and the server refuses the write anyway', async ({
  page,
  browser,
}) => {
  await signIn(page.request);
  await page.goto('/admin');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const viewer = { email: `viewer-${Date.now()}@example.com`, password: 'viewer password 123' };
  const add = page.locator('form', { has: page.getByRole('button', { name: 'Add user' }) });
  await add.getByLabel('Email').fill(viewer.email);
  await add.getByLabel('Role').selectOption('viewer');
  await add.getByLabel('Password').fill(viewer.password);
  await add.getByRole('button', { name: 'Add user' }).click();
  await expect(page.locator(`tr[data-user="${viewer.email}"]`)).toContainText('enabled');
  await page.screenshot({ path: 'artifacts/admin.png', fullPage: true });

  const context = await browser.newContext({ baseURL: base });
  const v = await context.newPage();
  const errors = watchErrors(v);
  await v.goto('/login');
  await expect(v.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await v.getByLabel('Email').fill(viewer.email);
  await v.getByLabel('Password').fill(viewer.password);
  await v.getByRole('button', { name: 'Sign in' }).click();
  await expect(v).toHaveURL(`${base}/`);
  await expect(v.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(v.locator('.role-badge')).toHaveText('viewer');
  await expect(v.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' })).toHaveCount(0);
  expect(errors).toEqual([]);

  const page403 = await v.goto('/admin');
  expect(page403?.status()).toBe(403);
  const smuggled = { email: `intruder-${Date.now()}@example.com`, display_name: '', role: 'admin', password: 'intruder password 1' };
  const write = await v.request.post('/api/admin_create_user', { form: smuggled, headers: { origin: base } });
  expect(write.status()).toBe(403);
  // Even the admin's session cannot be used from another site.
  const foreign = await page.request.post('/api/admin_create_user', {
    form: smuggled,
    headers: { origin: 'http://evil.example' },
  });
  expect(foreign.status()).toBe(403);
  await page.reload();
  await expect(page.locator(`tr[data-user="${viewer.email}"]`)).toBeVisible();
  await expect(page.locator(`tr[data-user="${smuggled.email}"]`)).toHaveCount(0);
  await context.close();
});

test('signing in works without JavaScript, and returns to the page asked for', async ({ browser }) => {
  await signIn((await browser.newContext({ baseURL: base })).request);
  const context = await browser.newContext({ baseURL: base, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/status');
  await expect(page).toHaveURL(/\/login\?next=%2Fstatus$/);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill('not it, but long enough');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  // The email and the page asked for survive the failed attempt (they are in the markup).
  await expect(page.getByLabel('Email')).toHaveValue(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${base}/status`);
  await expect(page.getByRole('heading', { name: 'Triage status' })).toBeVisible();
  await expect(page.locator('.role-badge')).toHaveText('admin');
  await context.close();
});

test('a page left open is sent to sign in once its session ends elsewhere', async ({ page }) => {
  await signIn(page.request);
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.live')).toHaveText('● live');
  // Signed out from somewhere else: within 10 s the server re-checks the live stream's session,
  // says `signed_out` and closes it, and the page leaves for sign-in (to come back here).
  const out = await page.request.post('/api/v1/auth/logout', { headers: { origin: base, accept: 'application/json' } });
  expect(out.status()).toBe(204);
  await expect(page).toHaveURL(/\/login\?next=%2F$/, { timeout: 30_000 });
});
