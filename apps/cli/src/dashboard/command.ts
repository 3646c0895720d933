import { HttpTransport, connect } from '@kvorum/client'
import { ACCESS_FLAGS, type ClusterAccess, UsageError, accessFlags, durationFlag, intFlag, parse, seedsFlag } from '../args.js'
import { Collector } from './collector.js'
import { dashboardApp, serve } from './server.js'
import { SiblingSampler } from './siblings.js'
import { scrapeNode } from './scrape.js'

export const DASHBOARD_HELP = `kvorum dashboard --seeds URL [--token T | --token-file F] [--metrics-token T] [--port 7180] [--host 127.0.0.1]
                 [--interval 1s] [--repair-every DURATION] [--tls-ca F --tls-cert F --tls-key F]
  Serve a live page of the cluster: the ring (every partition by owner, moves marked), each node's
  health as this process's SDK sees it, hint backlogs, rebalance progress, throughput and latency.
  It polls every --interval (the nodes' /metrics and /health, and one read of an absent key per node).
  It binds --host, loopback unless told otherwise: the page shows the cluster to whoever reaches it.
  --repair-every also runs an anti-entropy pass that often and shows its report (default: never).
  --metrics-token (or KVORUM_METRICS_TOKEN) scrapes /metrics when the nodes keep a metrics credential apart
  from the data one; by default the data token is sent (the simple mode's one token grants both).
  Ctrl-C stops it. docs/dashboard.md says what each panel means.`

/** Port of the page unless --port: beside the dev cluster's 7070. */
export const DASHBOARD_PORT = 7180
/** Pause between polls unless --interval, ms. */
const DEFAULT_INTERVAL_MS = 1000
/** Shortest and longest --interval, ms. */
const MIN_INTERVAL_MS = 250
const MAX_INTERVAL_MS = 60_000
/** Each node request's timeout, ms: below the interval, so a dead node does not slow the page's updates. */
const REQUEST_TIMEOUT_MS = 800

export interface DashboardOptions {
  readonly seeds: readonly string[]
  /** Credentials and TLS, as every command takes them. */
  readonly access?: ClusterAccess
  /** The credential for each node's /metrics, when the data token is not granted it. Default the data token. */
  readonly metricsToken?: string | undefined
  /** Default DASHBOARD_PORT; 0: any free port. */
  readonly port?: number
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 1,000 ms. */
  readonly intervalMs?: number
  /** Default 0: no anti-entropy passes. */
  readonly repairEveryMs?: number
}

/** A running dashboard. */
export interface Dashboard {
  readonly url: string
  close(): Promise<void>
}

/** Connect an SDK to the cluster, poll it, and serve the page. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const access = options.access ?? {}
  const kv = await connect({
    seeds: options.seeds,
    ...access,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    timeoutMs: REQUEST_TIMEOUT_MS * 2,
    detector: { probeIntervalMs: 250 },
  })
  const transport = new HttpTransport(access)
  const collector = new Collector(kv, new SiblingSampler(kv, transport, REQUEST_TIMEOUT_MS), {
    scrape: (node) => scrapeNode(transport, node, options.metricsToken ?? access.token, REQUEST_TIMEOUT_MS),
    intervalMs: options.intervalMs ?? DEFAULT_INTERVAL_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    repairEveryMs: options.repairEveryMs ?? 0,
    now: Date.now,
  })
  try {
    await collector.start()
    const { url, server } = await serve(dashboardApp(collector), options.host ?? '127.0.0.1', options.port ?? DASHBOARD_PORT)
    const close = async () => {
      await collector.stop()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await kv.close(200)
      await transport.close()
    }
    return { url, close }
  } catch (e) {
    await collector.stop()
    await kv.close(200)
    await transport.close()
    throw e
  }
}

export async function dashboard(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    seeds: { type: 'string' },
    ...ACCESS_FLAGS,
    'metrics-token': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    interval: { type: 'string' },
    'repair-every': { type: 'string' },
  })
  const seeds = seedsFlag(values.seeds)
  const port = intFlag(values.port, 'port', 0, 65535, DASHBOARD_PORT)
  const intervalMs = durationFlag(values.interval, 'interval') ?? DEFAULT_INTERVAL_MS
  if (intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) throw new UsageError(`--interval must be 250ms..60s, got ${values.interval}`)
  const repairEveryMs = durationFlag(values['repair-every'], 'repair-every') ?? 0
  const host = values.host as string
  const access = accessFlags(values)
  const metricsToken = (values['metrics-token'] as string | undefined) ?? (process.env.KVORUM_METRICS_TOKEN || undefined)
  const board = await startDashboard({ seeds, access, ...(metricsToken ? { metricsToken } : {}), port, host, intervalMs, repairEveryMs })
  console.log(`dashboard: ${board.url}`)
  console.log('Ctrl-C stops it.')
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    void board.close().then(() => process.exit(0))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
