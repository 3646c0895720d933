import { type NodeDef, type NodeProtocol, type Op, NodeUnavailableError, ROUTES } from '@kvorum/core'
import type { NodeClient, RequestOptions, Transport } from './transport.js'

/**
 * Calls node protocol implementations (storage engines) in-process. Nodes can
 * be marked unreachable to play a crashed or partitioned node; the simulator
 * builds richer faults on top of `intercept`.
 */
export class MemoryTransport implements Transport {
  private readonly unreachable = new Set<string>()
  onClusterVersion?: (version: number, node: NodeDef) => void
  /**
   * Runs around every call (`args` are the call's own); may delay, drop
   * (throw) or pass it on. Default: pass on. The simulator installs its
   * seeded scheduler here.
   */
  intercept: (node: string, op: string, opts: RequestOptions, call: () => Promise<unknown>, args: readonly unknown[]) => Promise<unknown> = (
    _n,
    _o,
    _r,
    call,
  ) => call()

  constructor(private readonly nodes: Map<string, NodeProtocol>) {}

  /** Make a node refuse every call, as if it were down, or reachable again. */
  setReachable(id: string, reachable: boolean): void {
    if (reachable) this.unreachable.delete(id)
    else this.unreachable.add(id)
  }

  node(def: NodeDef): NodeClient {
    const call =
      (op: Op) =>
      async (opts: RequestOptions, ...args: unknown[]) => {
        const run = async () => {
          if (this.unreachable.has(def.id)) throw new NodeUnavailableError(def.id, 'unreachable (in-memory transport)')
          const impl = this.nodes.get(def.id)
          if (!impl) throw new NodeUnavailableError(def.id, 'no such node')
          const out = await (impl[op] as (...a: unknown[]) => Promise<unknown>).apply(impl, args)
          // Bytes are counted as the HTTP face would put them on the wire, and only when asked (repairs).
          if (opts.onBytes) opts.onBytes(wireBytes(op, args), out === null ? 0 : (ROUTES[op].encodeAnswer as (a: unknown) => Uint8Array)(out).length)
          const health = await impl.health()
          // 0: the engine holds no definition (new or wiped), and the client hands it one.
          this.onClusterVersion?.(health.clusterVersion, def)
          return out
        }
        return this.intercept(def.id, op, opts, run, args)
      }
    // The operations are the route table's, so this face offers exactly what the HTTP face does.
    return Object.fromEntries(Object.keys(ROUTES).map((op) => [op, call(op as Op)])) as unknown as NodeClient
  }

  async close(): Promise<void> {}
}

/** The request body bytes of a call, as the HTTP face would send them. */
function wireBytes(op: Op, args: unknown[]): number {
  const call = (ROUTES[op].encodeRequest as (...a: unknown[]) => { body?: Uint8Array })(...args)
  return call.body?.length ?? 0
}
