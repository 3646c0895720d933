import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SCRAPED_METRICS, servedMetricNames } from '../apps/cli/src/dashboard/scrape.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

const GRAFANA = new URL('../docs/monitoring/grafana-dashboard.json', import.meta.url)
const PROMETHEUS = new URL('../docs/monitoring/prometheus.yml', import.meta.url)

interface Panel {
  title: string
  targets?: { expr: string }[]
}

/** Every PromQL expression of the Grafana dashboard: its panels' and its variables' queries. */
function grafanaExprs(): string[] {
  const dash = JSON.parse(readFileSync(GRAFANA, 'utf8')) as { panels: Panel[]; templating: { list: { query: string }[] } }
  return [...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dash.templating.list.map((v) => v.query)]
}

/** The metric names an expression reads: ours and Node's default metrics (PromQL's functions and labels are other words). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(?:kvorum|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0])
}

/** The names `exprs` read that `exposed` lacks. */
function missing(exprs: readonly string[], exposed: ReadonlySet<string>): string[] {
  return [...new Set(exprs.flatMap(metricNames))].filter((n) => !exposed.has(n))
}

describe('docs/monitoring: the Grafana dashboard and the Prometheus scrape configuration', () => {
  let cluster: ProcessCluster
  let exposed: Set<string>
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 1 })
    const kv = await cluster.connect()
    await kv.store('default', { codec: 'utf8' }).put('k', 'v')
    const res = await fetch(`${cluster.seeds[0]}/metrics`, { headers: { authorization: `Bearer ${cluster.token}` } })
    expect(res.status).toBe(200)
    exposed = servedMetricNames(await res.text())
  })
  afterAll(() => cluster?.close())

  it('every metric a Grafana panel or variable queries exists on a running node', () => {
    const exprs = grafanaExprs()
    expect(exprs.length).toBeGreaterThan(15)
    expect(new Set(exprs.flatMap(metricNames)).size).toBeGreaterThan(15)
    expect(missing(exprs, exposed)).toEqual([])
  })

  it('the check catches a metric name the node does not serve', () => {
    expect(missing(['sum(rate(kvorum_node_requests_totl[1m])) + kvorum_node_write_queue_depth'], exposed)).toEqual(['kvorum_node_requests_totl'])
  })

  it('every metric the dashboard page reads exists on a running node', () => {
    expect(Object.values(SCRAPED_METRICS).filter((n) => !exposed.has(n))).toEqual([])
  })

  it("the scrape configuration reads /metrics with a bearer token, at kvorum dev's node ports", () => {
    const yml = readFileSync(PROMETHEUS, 'utf8')
    expect(yml).toMatch(/^\s+metrics_path: \/metrics$/m)
    expect(yml).toMatch(/^\s+type: Bearer$/m)
    expect(yml).toContain("- targets: ['127.0.0.1:7070', '127.0.0.1:7071', '127.0.0.1:7072']")
  })
})
