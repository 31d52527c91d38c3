#!/usr/bin/env node
// Screenshots a densetrain report with Debian's headless Chromium (no downloaded browser), for the
// README: node scripts/screenshot-report.mjs runs/X/report.html docs/report.png [heightPx]
import { chromium } from 'playwright-core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [input, output, height = '2200'] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/screenshot-report.mjs REPORT.html OUT.png [heightPx]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: Number(height) } });
  await page.goto(pathToFileURL(resolve(input)).href);
  await page.screenshot({ path: output, fullPage: false });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
}
