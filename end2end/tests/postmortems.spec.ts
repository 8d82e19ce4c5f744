import { test, expect } from '@playwright/test';
import { RESPONDER, demoOutage, demoScenario, ensureResponder, signIn, watchErrors } from './helpers';

test.beforeEach(async ({ page }) => {
  await signIn(page.request);
});

const ANSWERS: [string, string][] = [
  ['What triggered it?', 'The demo target was switched to down.'],
  ['Which signal detected it first?', 'The shop-api liveness probe.'],
  ['What was the fastest safe mitigation?', 'Switching the demo target back to healthy.'],
  ['What single change would prevent it?', 'Guard the control port.'],
];

test('an incident from the demo becomes a reviewed, published and exported postmortem', async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  await ensureResponder(page.request);
  // The demo goes down: Triage opens an incident; back to healthy, the commander resolves it.
  const id = await demoOutage(page.request);
  await demoScenario(request, 'healthy');
  await page.goto(`/incidents/${id}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.suggestion')).toBeVisible({ timeout: 30_000 });
  const controls = page.getByRole('group', { name: 'Incident controls' });
  await controls.getByRole('button', { name: 'Take command' }).click();
  await expect(controls.getByRole('button', { name: 'Take command' })).toHaveCount(0);
  await controls.getByRole('button', { name: 'resolved' }).click();
  await expect(page.locator('.room-head .status-badge')).toHaveText('resolved');

  // Writing it from the room lands on the prefilled document.
  await page.getByRole('button', { name: 'Write the postmortem' }).click();
  await expect(page).toHaveURL(/\/postmortems\/[0-9a-f-]{36}$/, { timeout: 30_000 });
  await expect(page.locator('.postmortem h1')).toContainText('Postmortem #');
  const pmUrl = page.url();
  const pmId = pmUrl.split('/').pop() ?? '';
  for (const metric of ['time_to_detect', 'time_to_acknowledge', 'time_to_mitigate', 'time_to_resolve']) {
    await expect(page.locator(`tr[data-metric="${metric}"] .value`)).toHaveText(/^\d+(s|m \d+s)$/);
  }
  await expect(page.locator('tr[data-metric="time_to_detect"]')).toContainText('first failing check of shop-');
  await expect(page.locator('.pm-section[data-section="impact"]')).toContainText(/shop: \d+ of \d+ checks failed/);
  await expect(page.locator('.pm-section[data-section="detection"]')).toContainText('first failing check');
  await expect(page.locator('.frozen-charts figure.chart svg')).toHaveCount(3);
  await expect(page.locator('.pm-timeline .entry[data-kind="automatic"]').first()).toContainText('is down');

  // The four answers, written in the browser.
  for (const [question, answer] of ANSWERS) {
    const section = page.locator('.pm-section', { has: page.getByRole('heading', { name: question }) });
    await section.getByRole('button', { name: 'Edit' }).click();
    await section.getByRole('textbox', { name: question, exact: true }).fill(answer);
    await section.getByRole('button', { name: 'Save' }).click();
    await expect(page.locator('.pm-section', { hasText: question })).toContainText(answer);
  }

  // The timeline filters by kind, in the URL.
  await page.locator('.kinds label', { hasText: 'status' }).locator('input').check();
  await expect(page).toHaveURL(/kinds=status_change/);
  await expect(page.locator('.pm-timeline .entry[data-kind="automatic"]')).toHaveCount(0);
  await expect(page.locator('.pm-timeline .entry[data-kind="status_change"]').first()).toBeVisible();

  // A reviewer comments on a section.
  await page.getByRole('button', { name: 'Send for review' }).click();
  await expect(page.locator('.postmortem .meta .status-badge')).toHaveText('in review');
  const other = await browser.newContext();
  const reviewer = await other.newPage();
  await signIn(reviewer.request, RESPONDER);
  await reviewer.goto(pmUrl);
  await expect(reviewer.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(reviewer.getByRole('button', { name: 'Publish' })).toHaveCount(0); // responders do not publish
  const trigger = reviewer.locator('.pm-section[data-section="trigger"]');
  await trigger.getByRole('textbox', { name: 'Comment on What triggered it?' }).fill('Who can reach the control port?');
  await trigger.getByRole('button', { name: 'Comment' }).click();
  await expect(trigger.locator('.comment')).toContainText('Who can reach the control port?');
  await other.close();

  // The commander sees it and publishes; the document becomes read-only.
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.pm-section[data-section="trigger"] .comment')).toContainText(RESPONDER.email);
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.locator('.postmortem .meta .status-badge')).toHaveText('published');
  await expect(page.getByRole('button', { name: 'Edit' })).toHaveCount(0);
  await page.screenshot({ path: 'artifacts/postmortem-published.png', fullPage: true });

  // Printing leaves the controls out.
  await page.emulateMedia({ media: 'print' });
  await expect(page.getByRole('group', { name: 'Review' })).toBeHidden();
  await page.emulateMedia({ media: 'screen' });

  // The export: metrics, the four answers, the timeline.
  const exported = await page.request.get(`/api/v1/postmortems/${pmId}/export.md`);
  expect(exported.status()).toBe(200);
  const md = await exported.text();
  expect(md).toContain('| Time to detect (TTD) |');
  expect(md).toContain('| Time to resolve (TTR) |');
  for (const [question, answer] of ANSWERS) expect(md).toContain(`### ${question}\n\n${answer}`);
  expect(md).toContain('is **down**');
  expect(md).toContain('## Timeline');

  // The list shows it with the response-time chart.
  await page.goto('/postmortems');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator(`a[href="/postmortems/${pmId}"]`)).toBeVisible();
  await expect(page.locator('.response-times svg desc')).toContainText('mean time to detect');
  await page.goto('/postmortems?status=draft');
  await expect(page.locator(`a[href="/postmortems/${pmId}"]`)).toHaveCount(0);
  expect(errors).toEqual([]);
});
