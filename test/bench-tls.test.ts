import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { HttpTransport } from '@kvorum/client'
import { benchTls } from '../apps/cli/src/bench/tls.js'
import { type LocalNode, startNodes, stopNodes } from '../apps/cli/src/local-cluster.js'
import { freePorts } from './support/cli-ops.js'

/** Two nodes started and checked. */
const TEST_TIMEOUT_MS = 30_000
const root = mkdtempSync(join(tmpdir(), 'kvorum-bench-tls-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('kvorum bench --tls: the local cluster it starts serves HTTPS', () => {
  it(
    'its nodes answer over https:// with the throwaway CA, and refuse plain HTTP',
    async () => {
      const tls = benchTls(root)
      let nodes: LocalNode[] = []
      try {
        nodes = await startNodes({ nodes: 2, basePort: await freePorts(2), dataDir: root, token: 'bench', tls })
        expect(nodes.map((n) => n.url.slice(0, 8))).toEqual(['https://', 'https://'])
        const transport = new HttpTransport({ token: 'bench', tls: { ca: tls.ca } })
        try {
          for (const node of nodes) expect(await transport.node(node).health({ timeoutMs: 3000 })).toMatchObject({ id: node.id })
        } finally {
          await transport.close()
        }
        const plain = await fetch((nodes[0] as LocalNode).url.replace('https:', 'http:'))
        expect(plain.status).toBe(400)
        expect(await plain.json()).toMatchObject({ code: 'KV_TLS_REQUIRED' })
      } finally {
        await stopNodes(nodes)
      }
    },
    TEST_TIMEOUT_MS,
  )
})
