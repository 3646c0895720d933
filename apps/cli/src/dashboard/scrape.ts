/// <reference path="./prometheus-text.d.ts" />
import type { NodeDef } from '@kvorum/core'
import type { HttpTransport } from '@kvorum/client'
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format'

/** Longest /metrics body read, bytes: a node's is about 10 kB (100 hint targets at most). */
const MAX_METRICS_BYTES = 1 << 20

/** What the dashboard takes from one node's /metrics. Counters are totals since the node started. */
export interface NodeScrape {
  readonly requests: number
  /** Requests answered with a 5xx status. */
  readonly serverErrors: number
  readonly queueDepth: number
  /** Keys over every store, tombstones included until reaped. */
  readonly keys: number
  readonly databaseBytes: number
  readonly clusterVersion: number
  /** Keys this node holds as hints, per target node. */
  readonly hintsFor: Readonly<Record<string, number>>
}

/**
 * The node metrics the dashboard reads, by name: the Grafana dashboard in
 * docs/monitoring queries the same names, and a test checks both exist.
 */
export const SCRAPED_METRICS = {
  requests: 'kvorum_node_requests_total',
  queueDepth: 'kvorum_node_write_queue_depth',
  keys: 'kvorum_node_store_keys',
  databaseBytes: 'kvorum_node_database_bytes',
  clusterVersion: 'kvorum_node_cluster_version',
  hints: 'kvorum_node_hints_pending',
} as const

function samples(families: Map<string, PrometheusFamily>, name: string) {
  return (families.get(name)?.metrics ?? []).map((m) => ({ labels: m.labels ?? {}, value: Number(m.value ?? 0) }))
}

function sum(values: readonly { value: number }[]): number {
  return values.reduce((total, s) => total + (Number.isFinite(s.value) ? s.value : 0), 0)
}

/** The dashboard's figures from a /metrics body (Prometheus text format, parsed by the library). */
export function readScrape(text: string): NodeScrape {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]))
  const requests = samples(families, SCRAPED_METRICS.requests)
  const hintsFor: Record<string, number> = {}
  for (const s of samples(families, SCRAPED_METRICS.hints)) if (s.labels.target) hintsFor[s.labels.target] = s.value
  return {
    requests: sum(requests),
    serverErrors: sum(requests.filter((s) => (s.labels.status ?? '').startsWith('5'))),
    queueDepth: sum(samples(families, SCRAPED_METRICS.queueDepth)),
    keys: sum(samples(families, SCRAPED_METRICS.keys)),
    databaseBytes: sum(samples(families, SCRAPED_METRICS.databaseBytes)),
    clusterVersion: sum(samples(families, SCRAPED_METRICS.clusterVersion)),
    hintsFor,
  }
}

/**
 * GET /metrics of `node` with `token`, within `timeoutMs`, through the
 * dashboard's transport (so with its TLS settings); rejects on a non-200 answer.
 */
export async function scrapeNode(transport: HttpTransport, node: NodeDef, token: string | undefined, timeoutMs: number): Promise<NodeScrape> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
  const res = await transport.send(node, { method: 'GET', path: '/metrics', headers, body: null, timeoutMs })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  if (res.body.length > MAX_METRICS_BYTES) throw new Error(`/metrics sent ${res.body.length} bytes, more than ${MAX_METRICS_BYTES}`)
  return readScrape(Buffer.from(res.body).toString('utf8'))
}

/** Every sample name a /metrics body can hold (a histogram's family adds _bucket, _sum and _count): for checking the names a dashboard queries. */
export function servedMetricNames(text: string): Set<string> {
  const names = new Set<string>()
  for (const f of parsePrometheusTextFormat(text)) {
    names.add(f.name)
    if (f.type === 'HISTOGRAM' || f.type === 'SUMMARY') for (const suffix of ['_bucket', '_sum', '_count']) names.add(f.name + suffix)
  }
  return names
}
