import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = dirname(fileURLToPath(import.meta.url))

/**
 * The modules a source file loads at run time: every import or re-export but
 * `import type` / `export type` (with verbatimModuleSyntax, `import { type X }`
 * still loads its module, so it counts).
 */
function runtimeImports(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8')
  const from = [...text.matchAll(/^(?:import|export)\s+(?!type\s)[^;'"]*?\sfrom\s+'([^']+)'/gm)].map((m) => m[1] as string)
  const bare = [...text.matchAll(/^import\s+'([^']+)'/gm)].map((m) => m[1] as string)
  return [...from, ...bare]
}

/** Every package a module and the modules it loads (within this package) load at run time. */
function packagesLoadedBy(entry: string): Set<string> {
  const packages = new Set<string>()
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const spec of runtimeImports(file)) {
      if (spec.startsWith('./')) visit(spec.slice(2).replace(/\.js$/, '.ts'))
      else packages.add(spec)
    }
  }
  visit(entry)
  return packages
}

const OPTIONAL = /^(prom-client|@opentelemetry\/)/

describe('prom-client and @opentelemetry/api stay optional', () => {
  it('the SDK entry point (and its test seams) load neither', () => {
    for (const entry of ['index.ts', 'testing.ts']) expect([...packagesLoadedBy(entry)].filter((p) => OPTIONAL.test(p))).toEqual([])
  })

  it('the Prometheus entry loads prom-client (the check sees it), the OpenTelemetry one only its types', () => {
    expect(packagesLoadedBy('prometheus.ts')).toContain('prom-client')
    expect([...packagesLoadedBy('opentelemetry.ts')].filter((p) => OPTIONAL.test(p))).toEqual([])
  })
})
