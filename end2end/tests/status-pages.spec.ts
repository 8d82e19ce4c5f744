import { test, expect } from '@playwright/test';
import { ADMIN, ORIGIN, declareIncident, resolveOpen, signIn, watchErrors } from './helpers';

// Status pages in the browser: an admin publishes one with the form, an anonymous browser reads
// it, and the commander's public update from the room reaches that open page without a reload.
// Internal words (the incident's title) never do.

test('an admin publishes a status page and a public update reaches an anonymous reader live', async ({ page, browser }) => {
  test.setTimeout(120_000);
  const errors = watchErrors(page);
  await signIn(page.request, ADMIN);
  const slug = `e2e-${Date.now()}`;
  const field = (f: string) => page.locator(`[data-field="${f}"] input`).first();

  await page.goto('/status-pages');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.getByRole('button', { name: 'Add a status page' }).click();
  const form = page.getByRole('form', { name: 'Status page' });
  await field('title').fill('E2E public status');
  await field('slug').fill(slug);
  // An unknown service is refused next to the field.
  await form.locator('[data-field="groups"] textarea').fill('Storefront: no-such-service');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-field="groups"] .field-error')).toContainText('no service named no-such-service');
  await form.locator('[data-field="groups"] textarea').fill('Storefront: shop');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator(`tr[data-slug="${slug}"]`)).toBeVisible();

  // Anyone reads it, signed in or not.
  const anonymous = await browser.newContext({ baseURL: ORIGIN });
  const reader = await anonymous.newPage();
  const readerErrors = watchErrors(reader);
  await reader.goto(`/s/${slug}`);
  await expect(reader.locator('h1')).toHaveText('E2E public status');
  await expect(reader.locator('.service .name')).toHaveText(['shop']);
  await expect(reader.locator('.service .bar')).toHaveCount(90);

  // The commander says something from the room; the open page shows it without a reload.
  const services = await (await page.request.get('/api/v1/services')).json();
  const shop = services.find((s: any) => s.name === 'shop').id;
  const id = await declareIncident(page.request, { title: 'e2e internal title 7f3a', services: [shop] });
  await page.goto(`/incidents/${id}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const composer = page.getByRole('form', { name: 'Post a public update' });
  await composer.locator('select').selectOption('identified');
  await composer.locator('textarea').fill('Checkout is slow for some customers; a fix is **under way**.');
  await composer.getByRole('button', { name: 'Post public update' }).click();
  await expect(page.locator('.public-update-list li')).toHaveCount(1);
  await expect(reader.locator('.incident')).toContainText('a fix is under way', { timeout: 30_000 });
  await expect(reader.locator('.incident strong').first()).toHaveText('identified');
  expect(await reader.content()).not.toContain('e2e internal title 7f3a');
  await reader.screenshot({ path: 'artifacts/status-page.png', fullPage: true });

  await resolveOpen(page.request);
  await anonymous.close();
  expect(errors).toEqual([]);
  expect(readerErrors).toEqual([]);
});
