import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

/** Path (relative to the repository root, `/`-separated) → the specifiers it imports. */
export type ImportGraph = ReadonlyMap<string, ReadonlySet<string>>

/** Workspace packages by import name, with the folder their code lives in. */
export const WORKSPACE_PACKAGES = {
  core: { name: '@kvorum/core', dir: 'packages/core' },
  storage: { name: '@kvorum/storage', dir: 'packages/storage' },
  client: { name: '@kvorum/client', dir: 'packages/client' },
  node: { name: 'kvorum-node', dir: 'apps/node' },
  cli: { name: 'kvorum', dir: 'apps/cli' },
} as const

export type Part = keyof typeof WORKSPACE_PACKAGES

/** Every module specifier a file names: imports and re-exports (type-only included), `import()` calls and types. */
export function specifiersOf(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: string[] = []
  const literal = (node: ts.Node | undefined): void => {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push(node.text)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier)
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) literal(node.moduleReference.expression)
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) literal(node.arguments[0])
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal)
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** Whether a path is production code: TypeScript under a part's `src/`, not a test, case file or declaration. */
export function isProductionFile(file: string): boolean {
  return /^(packages|apps)\/[^/]+\/src\/.+\.ts$/.test(file) && !/\.(test|case|d)\.ts$/.test(file)
}

/** Read every production file of the repository at `root` into file → specifiers. */
export function readProductionGraph(root: string): ImportGraph {
  const graph = new Map<string, Set<string>>()
  for (const top of ['packages', 'apps']) {
    for (const part of readdirSync(path.join(root, top))) {
      const src = path.join(root, top, part, 'src')
      for (const entry of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
        const file = `${top}/${part}/src/${entry.split(path.sep).join('/')}`
        if (!isProductionFile(file)) continue
        graph.set(file, new Set(specifiersOf(file, readFileSync(path.join(root, file), 'utf8'))))
      }
    }
  }
  return graph
}

/** The file a relative specifier names among `files` (`./x.js` is `x.ts`, `./x` may be `x/index.ts`), or null. */
export function resolveRelative(from: string, specifier: string, files: ReadonlySet<string>): string | null {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return null
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier))
  const candidates = [target, target.replace(/\.js$/, '.ts'), `${target}.ts`, `${target}/index.ts`]
  return candidates.find((c) => files.has(c)) ?? null
}

/** The workspace part a file belongs to, or null. */
export function partOfFile(file: string): Part | null {
  for (const [part, { dir }] of Object.entries(WORKSPACE_PACKAGES)) if (file.startsWith(`${dir}/`)) return part as Part
  return null
}

/** The workspace part a bare specifier names (`@kvorum/core`, `kvorum-node/main`), or null for other packages. */
export function partOfSpecifier(specifier: string): Part | null {
  for (const [part, { name }] of Object.entries(WORKSPACE_PACKAGES)) {
    if (specifier === name || specifier.startsWith(`${name}/`)) return part as Part
  }
  return null
}

/** File → files it imports, across packages too (a bare workspace name resolves to nothing here: parts are checked apart). */
export function fileEdges(graph: ImportGraph): Map<string, string[]> {
  const files = new Set(graph.keys())
  const edges = new Map<string, string[]>()
  for (const [file, specifiers] of graph) {
    const targets = [...specifiers].map((s) => resolveRelative(file, s, files)).filter((t): t is string => t !== null)
    edges.set(file, [...new Set(targets)].sort())
  }
  return edges
}

/**
 * Every import cycle, one per strongly connected component (Tarjan), as a concrete loop `a → b → … → a`
 * starting at the component's first file in sorted order. A file importing itself is a cycle too.
 */
export function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const visit = (v: string): void => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    for (;;) {
      const w = stack.pop()!
      onStack.delete(w)
      component.push(w)
      if (w === v) break
    }
    const selfLoop = component.length === 1 && (edges.get(v) ?? []).includes(v)
    if (component.length > 1 || selfLoop) components.push(component.sort())
  }
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v)
  return components.map((c) => loopWithin(c, edges)).sort((a, b) => a[0]!.localeCompare(b[0]!))
}

/** A shortest loop from the component's first file back to itself, moving only inside the component. */
function loopWithin(component: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[] {
  const members = new Set(component)
  const start = component[0]!
  const cameFrom = new Map<string, string>()
  const queue = [start]
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!
    for (const w of edges.get(v) ?? []) {
      if (!members.has(w)) continue
      if (w === start) {
        const loop = [start]
        for (let at: string | undefined = v; at !== undefined && at !== start; at = cameFrom.get(at)) loop.splice(1, 0, at)
        return [...loop, start]
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v)
        queue.push(w)
      }
    }
  }
  throw new Error(`no loop through ${start} inside its own component`)
}

/** Parts each part may import (DESIGN.md §1): core ← storage ← node; core ← client ← cli; cli starts nodes. */
export const ALLOWED_IMPORTS: Readonly<Record<Part, readonly Part[]>> = {
  core: [],
  storage: ['core'],
  client: ['core'],
  node: ['core', 'storage'],
  cli: ['core', 'client', 'node'],
}

/** Each import that crosses parts against {@link ALLOWED_IMPORTS}, as `file imports spec (part)`. */
export function directionViolations(graph: ImportGraph): string[] {
  const files = new Set(graph.keys())
  const violations: string[] = []
  for (const [file, specifiers] of graph) {
    const from = partOfFile(file)
    if (from === null) continue
    for (const specifier of specifiers) {
      const resolved = resolveRelative(file, specifier, files)
      const to = resolved === null ? partOfSpecifier(specifier) : partOfFile(resolved)
      if (to === null || to === from || ALLOWED_IMPORTS[from].includes(to)) continue
      violations.push(`${file} imports ${specifier} (${from} must not import ${to})`)
    }
  }
  return violations.sort()
}
