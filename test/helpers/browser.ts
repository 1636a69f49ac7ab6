import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Debian package's Chromium (.ci/apt-packages); no browser is ever downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * One headless Chromium per test file, driven by playwright-core; each person is a new context (its own cookies
 * and storage, like a fresh profile). The portal's self-signed certificate is accepted.
 */
export class TestBrowser {
  private constructor(private readonly browser: Browser) {}

  static async launch(): Promise<TestBrowser> {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return new TestBrowser(browser);
  }

  /** A fresh person at a desk (or, with `phone`, on a phone-sized screen). */
  async person(options: { phone?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await this.browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: options.phone ? { width: 390, height: 844 } : { width: 1200, height: 800 },
      deviceScaleFactor: 1,
      colorScheme: 'light',
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { context, page };
  }

  close(): Promise<void> {
    return this.browser.close();
  }
}

/** A full-page screenshot for docs/images/. */
export async function screenshot(page: Page, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
}
