import { Page } from '@playwright/test';

/** Collects console errors and uncaught exceptions for the whole test. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** The demo target's port (its control API listens on the next one). */
export const demoPort = Number(process.env.TRIAGE_E2E_DEMO_PORT ?? 3918);
