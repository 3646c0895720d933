import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, type Page, chromium } from 'playwright-core'

/** Debian's Chromium, which .ci/run installs when it is missing; the tests never download a browser. */
export const CHROMIUM = '/usr/bin/chromium'
export const HAVE_CHROMIUM = existsSync(CHROMIUM)
/** Said in the name of a test skipped for want of Chromium. */
export const NO_CHROMIUM = `skipped: no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium)`

/** Where browser tests write their screenshots (ignored by git). */
export const OUTPUT_DIR = fileURLToPath(new URL('../output/', import.meta.url))

/**
 * A headless Chromium with a fresh profile (playwright takes the profile
 * directory as launchPersistentContext's argument, not as --user-data-dir);
 * close() removes it.
 */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'kvorum-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 1000 },
  })
  return {
    context,
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Every console error and uncaught exception of a page, as text. */
export function consoleErrors(page: Page): string[] {
  const errors: string[] = []
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`))
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`))
  return errors
}

/** Write a full-page screenshot as OUTPUT_DIR/`folder`/`name`.png; resolves its path. */
export async function screenshot(page: Page, folder: string, name: string): Promise<string> {
  const dir = join(OUTPUT_DIR, folder)
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
