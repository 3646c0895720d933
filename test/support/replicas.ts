import { type SiblingSet, toHex, utf8 } from '@kvorum/core'
import type { NodeClient } from '@kvorum/client'

/**
 * Looking at replicas directly, as an operator would, through a node's client (HTTP or in-memory), so the same
 * helper serves tests over engines and over processes.
 */

/** Per-request options of every look: generous, since a test waits for the answer anyway. */
const LOOK = { timeoutMs: 10_000 }
/** Keys per scan page. */
const SCAN_PAGE_KEYS = 1000
/** Pages per partition before a scan is taken for a loop (a million keys). */
const MAX_SCAN_PAGES = 1000

/** A sibling set's identity: its dots in order, a tombstone marked with `-`. */
export function dotsOf(set: SiblingSet): string {
  return set
    .map((v) => `${v.dot.actor}:${v.dot.counter}${v.value === null ? '-' : ''}`)
    .sort()
    .join(',')
}

/** Every key of a store on one replica, key hex → {@link dotsOf} its set (a heads-only scan of every partition). */
export async function storeContents(node: NodeClient, store: string, partitions: number): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (let p = 0; p < partitions; p++) {
    let after: Uint8Array | undefined
    for (let page = 0; ; page++) {
      if (page === MAX_SCAN_PAGES) throw new Error(`assertion failed: partition ${p} of ${store} has over ${MAX_SCAN_PAGES} pages`)
      const res = await node.scan(LOOK, store, { partition: p, limit: SCAN_PAGE_KEYS, headsOnly: true, ...(after ? { after } : {}) })
      for (const it of res.items) out.set(toHex(it.key), dotsOf(it.siblings))
      if (!res.next) break
      after = res.next
    }
  }
  return out
}

/** One key's stored set on each replica that answers, by node id (a replica whose read fails is left out). */
export async function replicaSets(nodes: Iterable<readonly [string, NodeClient]>, store: string, key: string): Promise<Map<string, SiblingSet>> {
  const out = new Map<string, SiblingSet>()
  for (const [id, node] of nodes) {
    const [res] = await node.get(LOOK, store, [utf8(key)])
    if (res?.ok) out.set(id, res.value)
  }
  return out
}

/** Hints every node keeps for `target`, summed. */
export async function hintBacklog(nodes: Iterable<NodeClient>, target: string): Promise<number> {
  let n = 0
  for (const node of nodes) n += (await node.hintTargets(LOOK)).find((t) => t.target === target)?.count ?? 0
  return n
}

/** Delete every hint the nodes keep for `target`, so that only anti-entropy can heal it. */
export async function dropHints(nodes: Iterable<NodeClient>, target: string): Promise<void> {
  for (const node of nodes) {
    for (let round = 0; round < MAX_SCAN_PAGES; round++) {
      const hints = await node.listHints(LOOK, target, SCAN_PAGE_KEYS, 0)
      if (hints.length === 0) break
      await node.deleteHints(
        LOOK,
        target,
        hints.map((h) => ({ id: h.id, seq: h.seq })),
      )
    }
  }
}

/** Wait until `check` holds, polling every `pollMs`; throws after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5000, pollMs = 20): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, pollMs))
  }
  throw new Error(`condition not met within ${ms} ms`)
}
