import { copyFileSync } from 'node:fs'
import type { Kvorum } from '@kvorum/client'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dashboard, startDashboard } from '../apps/cli/src/dashboard/command.js'
import { HAVE_CHROMIUM, NO_CHROMIUM, consoleErrors, launchBrowser, screenshot } from './support/browser.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

/** Longest wait for the page to show a node down or up again (the bound), ms. */
const SHOWN_WITHIN_MS = 5000
/** The screenshot the README shows, taken by this test: copied there when KVORUM_UPDATE_SCREENSHOT=1, so a test run leaves the tree as it was. */
const README_SCREENSHOT = new URL('../docs/dashboard.png', import.meta.url)
const UPDATE_README_SCREENSHOT = process.env.KVORUM_UPDATE_SCREENSHOT === '1'
const PARTITIONS = 64

/** Write `count` keys so a rebalance has something to copy. */
async function fill(kv: Kvorum, count: number): Promise<void> {
  const store = kv.store('default', { codec: 'utf8' })
  for (let i = 0; i < count; i += 100)
    await store.putMany(Array.from({ length: Math.min(100, count - i) }, (_, j) => ({ key: `k${i + j}`, value: `v${i + j}` })))
}

describe.skipIf(!HAVE_CHROMIUM)(HAVE_CHROMIUM ? 'the dashboard in headless Chromium' : `the dashboard in headless Chromium (${NO_CHROMIUM})`, () => {
  let cluster: ProcessCluster
  let board: Dashboard
  let kv: Kvorum
  let page: Page
  let errors: string[]
  let browser: Awaited<ReturnType<typeof launchBrowser>>

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 4, partitions: PARTITIONS })
    kv = await cluster.connect()
    board = await startDashboard({ seeds: cluster.seeds, token: cluster.token, port: 0, intervalMs: 250 })
    browser = await launchBrowser()
    page = await browser.context.newPage()
    errors = consoleErrors(page)
    await page.goto(board.url)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await board?.close()
    await cluster?.close()
  })

  const nodeState = (id: string) => page.locator(`#nodes tr[data-node="${id}"]`)

  it('draws every partition of the ring, coloured by owner, with its preference list on hover', async () => {
    await page.waitForSelector('#ring path[data-partition]')
    await expect.poll(() => page.locator('#ring path[data-partition]').count()).toBe(PARTITIONS)
    const owners = await page.locator('#ring path[data-partition]').evaluateAll((paths) => paths.map((p) => p.getAttribute('data-owner')))
    expect(owners).toEqual(cluster.def.assignment)
    const title = await page.locator('#ring path[data-partition="5"] title').textContent()
    expect(title).toMatch(new RegExp(`^partition 5: owner ${cluster.def.assignment[5]}; default \\(n=3\\) reads ask n\\d, n\\d, n\\d$`))
    await expect.poll(() => page.locator('#nodes tr[data-up="true"]').count()).toBe(4)
    // Each node's latency as the SDK saw it, and the charts' lines over the polls so far.
    await expect.poll(() => page.locator('#nodes tr[data-node="n1"] td.p50').textContent(), { timeout: 10_000 }).toMatch(/^\d+\.\d\d$/)
    await expect.poll(async () => ((await page.locator('#throughput polyline').first().getAttribute('points')) ?? '').split(' ').length).toBeGreaterThan(2)
    expect(await page.locator('#latency-caption').textContent()).toMatch(/^p50 \d+\.\d\d ms, p99 \d+\.\d\d ms; top of the chart/)
    await screenshot(page, 'dashboard', '1-ring')
  })

  it('a node killed with SIGKILL turns down within 5 seconds, and up again within 5 seconds of its restart', async () => {
    const killedAt = Date.now()
    await cluster.kill('n2')
    await expect.poll(() => nodeState('n2').getAttribute('data-up'), { timeout: SHOWN_WITHIN_MS, interval: 100 }).toBe('false')
    const downAfterMs = Date.now() - killedAt
    expect(await nodeState('n2').locator('.badge').textContent()).toBe('DOWN')
    expect(await page.locator('#summary').textContent()).toContain('3/4 nodes up')
    // Writes while it is down leave hints for it on the other nodes: the backlog panel shows them.
    const store = kv.store('default', { codec: 'utf8' })
    await store.putMany(Array.from({ length: 100 }, (_, i) => ({ key: `while-down${i}`, value: 'v' })))
    const backlog = page.locator('#hints [data-target="n2"] span:last-child')
    await expect
      .poll(async () => Number(/^(\d+) keys$/.exec((await backlog.textContent({ timeout: 100 }).catch(() => '')) ?? '')?.[1] ?? 0), { timeout: 10_000 })
      .toBeGreaterThan(0)
    await screenshot(page, 'dashboard', '2-node-down')
    await cluster.start('n2')
    const restartedAt = Date.now()
    await expect.poll(() => nodeState('n2').getAttribute('data-up'), { timeout: SHOWN_WITHIN_MS, interval: 100 }).toBe('true')
    console.log(`dashboard: n2 shown down ${downAfterMs} ms after SIGKILL, up ${Date.now() - restartedAt} ms after its restart`)
    await screenshot(page, 'dashboard', '3-node-up-again')
  })

  it('shows the versions sampled reads saw, beside the Dynamo figure', async () => {
    const store = kv.store('default', { codec: 'utf8' })
    // Two writes without a context: each key keeps both as siblings.
    for (const round of ['a', 'b']) await store.putMany(Array.from({ length: 200 }, (_, i) => ({ key: `twice${i}`, value: `${round}${i}` })))
    const twoVersions = page.locator('#siblings tr[data-versions="2"] td:nth-child(2)')
    await expect
      .poll(async () => Number(/\((\d+)\)/.exec((await twoVersions.textContent({ timeout: 100 }).catch(() => '')) ?? '')?.[1] ?? 0), {
        timeout: 30_000,
        interval: 250,
      })
      .toBeGreaterThan(0)
    expect(await page.locator('#siblings tr[data-versions="1"] td:nth-child(4)').textContent()).toBe('99.94%')
    await screenshot(page, 'dashboard', '4-siblings')
  }, 60_000)

  it("a rebalance's progress moves on the page, and the page says when it has ended", async () => {
    await fill(kv, 1000)
    const plan = kv.planChange({ remove: ['n4'], entriesPerStep: 4 })
    expect(plan.steps).toBeGreaterThan(2)
    const running = kv.rebalance(plan, { cleanupGraceMs: 300, drainMs: 100, maxKeysPerSecond: 500 })
    const box = page.locator('#rebalance')
    try {
      await expect.poll(() => box.getAttribute('data-active'), { timeout: 40_000, interval: 100 }).toBe('true')
      const first = { step: Number(await box.getAttribute('data-step')), done: Number(await box.getAttribute('data-done')) }
      await expect
        .poll(async () => Number(await box.getAttribute('data-step')) > first.step || Number(await box.getAttribute('data-done')) > first.done, {
          timeout: 40_000,
          interval: 100,
        })
        .toBe(true)
      // The ring marks the partitions the step is moving, while it moves them.
      await expect.poll(() => page.locator('#ring path.moving').count(), { timeout: 40_000, interval: 50 }).toBeGreaterThan(0)
      await screenshot(page, 'dashboard', '5-rebalance')
      const taken = await screenshot(page, 'dashboard', 'readme')
      if (UPDATE_README_SCREENSHOT) copyFileSync(taken, README_SCREENSHOT)
    } finally {
      await running
    }
    await expect.poll(() => box.getAttribute('data-active'), { timeout: 10_000, interval: 100 }).toBe('false')
    await expect.poll(() => page.locator('#legend li').count(), { timeout: 10_000 }).toBe(3)
    await screenshot(page, 'dashboard', '6-rebalance-done')
  }, 150_000)

  it('had no console errors in any of these states', () => {
    expect(errors).toEqual([])
  })
})
