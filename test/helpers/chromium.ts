/**
 * Headless Debian chromium for browser tests, driven by playwright-core (no browser download).
 * CHROMIUM_PATH overrides the executable. Missing chromium is a test failure with a clear
 * message, unless DENSETRAIN_SKIP_BROWSER=1 (then the browser tests are skipped, visibly).
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function skipBrowser(): boolean {
  return process.env['DENSETRAIN_SKIP_BROWSER'] === '1';
}

/** Null when browser tests are skipped on purpose; throws a clear error when chromium is missing. */
export function chromiumStatus(): { available: true } | { available: false; message: string } {
  if (existsSync(CHROMIUM_PATH)) return { available: true };
  return {
    available: false,
    message:
      `chromium not found at ${CHROMIUM_PATH}. Install it (Debian/Ubuntu: apt-get install -y chromium), ` +
      'point CHROMIUM_PATH at a chromium binary, or set DENSETRAIN_SKIP_BROWSER=1 to skip browser tests.',
  };
}

export async function launchChromium(): Promise<Browser> {
  const status = chromiumStatus();
  if (!status.available) throw new Error(status.message);
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
}
