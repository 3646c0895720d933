import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { directionViolations, fileEdges, findCycles, readProductionGraph, specifiersOf, type ImportGraph } from './support/import-graph.js'

/**
 * Import cycles that exist today and are being removed on other branches (issue "One contract per seam").
 * TEMPORARY: the lead empties this list once those branches are merged; any cycle not listed here fails, and an
 * entry that no longer matches a cycle fails too, so the list cannot outlive its cycles. Each entry is the set of
 * files in one cycle; a cycle passes if all its files lie within one entry (a cycle that shrinks still passes).
 */
/**
 * Cycles tolerated while they are being removed: none. An entry here needs a
 * reason and an issue; the test below fails on any entry that no longer exists.
 */
const KNOWN_CYCLES: readonly (readonly string[])[] = []

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function graphOf(sources: Record<string, string>): ImportGraph {
  return new Map(Object.entries(sources).map(([file, source]) => [file, new Set(specifiersOf(file, source))]))
}

function isKnown(cycle: readonly string[]): boolean {
  return KNOWN_CYCLES.some((known) => cycle.every((file) => known.includes(file)))
}

describe('production imports', () => {
  const graph = readProductionGraph(ROOT)
  const cycles = findCycles(fileEdges(graph))

  it('reads the production files of every part and none of the tests', () => {
    const files = [...graph.keys()]
    for (const dir of ['packages/core/', 'packages/storage/', 'packages/client/', 'apps/node/', 'apps/cli/']) {
      expect(files.some((f) => f.startsWith(dir))).toBe(true)
    }
    expect(files.filter((f) => /\.(test|case)\.ts$/.test(f))).toEqual([])
  })

  it('have no import cycle, within a package or across (DESIGN.md §1)', () => {
    const unknown = cycles.filter((c) => !isKnown(c)).map((c) => c.join(' → '))
    expect(unknown, `import cycles:\n${unknown.join('\n')}`).toEqual([])
  })

  it('list no allowed cycle that is gone', () => {
    const stale = KNOWN_CYCLES.filter((known) => !cycles.some((c) => c.every((file) => known.includes(file))))
    expect(stale, 'remove these from KNOWN_CYCLES: they no longer form a cycle').toEqual([])
  })

  it('follow the direction core ← storage ← node, core ← client ← cli (DESIGN.md §1)', () => {
    expect(directionViolations(graph)).toEqual([])
  })
})

describe('the import checker', () => {
  it('sees value, type-only, re-export, side-effect and dynamic imports', () => {
    const source = [
      "import { a } from './a.js'",
      "import type { B } from './b.js'",
      "export * from './c.js'",
      "export type { D } from './d.js'",
      "import './e.js'",
      "const f = await import('./f.js')",
      "type G = import('./g.js').G",
      "// import { h } from './h.js'",
      'const text = "import { i } from \'./i.js\'"',
    ].join('\n')
    expect(specifiersOf('x.ts', source).sort()).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js'])
  })

  it('finds a cycle made only of type imports, and a file importing itself', () => {
    const graph = graphOf({
      'packages/core/src/a.ts': "import type { B } from './b.js'",
      'packages/core/src/b.ts': "import type { C } from './dir/c.js'",
      'packages/core/src/dir/c.ts': "export type { A } from '../a.js'",
      'packages/core/src/d.ts': "import { d } from './d.js'",
      'packages/core/src/e.ts': "import { a } from './a.js'",
    })
    expect(findCycles(fileEdges(graph))).toEqual([
      ['packages/core/src/a.ts', 'packages/core/src/b.ts', 'packages/core/src/dir/c.ts', 'packages/core/src/a.ts'],
      ['packages/core/src/d.ts', 'packages/core/src/d.ts'],
    ])
  })

  it('flags each import against the direction, by package name or by relative path', () => {
    const graph = graphOf({
      'packages/core/src/a.ts': "import { x } from '@kvorum/storage'",
      'packages/client/src/b.ts': "import { Engine } from '@kvorum/storage'\nimport { app } from 'kvorum-node'\nimport { k } from '@kvorum/core'",
      'apps/node/src/c.ts': "import type { Kvorum } from '@kvorum/client'\nimport { Hono } from 'hono'",
      'apps/cli/src/d.ts': "import { app } from 'kvorum-node'\nimport { w } from '../../../packages/storage/src/e.js'",
      'packages/storage/src/e.ts': "import { k } from '@kvorum/core'",
    })
    expect(directionViolations(graph)).toEqual([
      'apps/cli/src/d.ts imports ../../../packages/storage/src/e.js (cli must not import storage)',
      'apps/node/src/c.ts imports @kvorum/client (node must not import client)',
      'packages/client/src/b.ts imports @kvorum/storage (client must not import storage)',
      'packages/client/src/b.ts imports kvorum-node (client must not import node)',
      'packages/core/src/a.ts imports @kvorum/storage (core must not import storage)',
    ])
  })
})
