import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The monorepo's root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * A registry address nothing listens on (loopback, the discard port): with `--offline` npm never asks a registry,
 * and if it ever tried, it would be refused at once instead of reaching the network.
 */
const CLOSED_REGISTRY = 'http://127.0.0.1:9/'

/** How long one npm or CLI command may take, ms. */
const COMMAND_TIMEOUT_MS = 30_000

/** Packages followed at most when collecting the third-party dependencies to pack: a bound, far above today's 4. */
const MAX_THIRD_PARTY = 50

/**
 * This environment without npm's own `npm_*` variables: a test run by `npm test` inherits them (the monorepo as
 * the local prefix, its workspaces, its cache), and the npm started for an application outside must not see them.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.toLowerCase().startsWith('npm_')) env[key] = value
  return { ...env, ...extra }
}

/** Run a command to its end (bounded), with stdout and stderr as text. */
export function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS })
}

/** Run a command that must succeed; its stdout. */
export function runOk(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const result = run(command, args, options)
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${options.cwd}) exited with ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

/** One tarball `npm pack` wrote. */
export interface Packed {
  readonly name: string
  readonly version: string
  /** Absolute path of the .tgz. */
  readonly tarball: string
  /** The paths inside the package, as npm listed them. */
  readonly files: readonly string[]
}

/** `npm pack` the given directories (workspaces or installed packages) into `dest`, without running their scripts. */
export function pack(dirs: readonly string[], dest: string): Packed[] {
  mkdirSync(dest, { recursive: true })
  const out = runOk('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest, ...dirs], { cwd: ROOT })
  const listed = JSON.parse(out) as { name: string; version: string; filename: string; files: { path: string }[] }[]
  return listed.map((p) => ({ name: p.name, version: p.version, tarball: join(dest, p.filename), files: p.files.map((f) => f.path) }))
}

/** The parts of a package.json this file reads. */
export interface DependencyFields {
  readonly name: string
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

/** What npm installs with a package: its dependencies and the peers it does not mark optional. */
export function installedWith(manifest: DependencyFields): string[] {
  const peers = Object.keys(manifest.peerDependencies ?? {}).filter((name) => !manifest.peerDependenciesMeta?.[name]?.optional)
  return [...Object.keys(manifest.dependencies ?? {}), ...peers]
}

function manifestAt(dir: string): DependencyFields {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as DependencyFields
}

/**
 * `names` and everything they depend on outside the workspace, by name, with their installed directories: what
 * the packed packages need from a registry, taken from the monorepo's node_modules (`npm ci` hoists them there).
 */
export function thirdParty(names: readonly string[]): Map<string, string> {
  const found = new Map<string, string>()
  const queue = [...names]
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (found.has(name) || name.startsWith('@kvorum/')) continue
    if (found.size >= MAX_THIRD_PARTY) throw new Error(`more than ${MAX_THIRD_PARTY} third-party packages to pack`)
    const dir = join(ROOT, 'node_modules', name)
    if (!existsSync(join(dir, 'package.json'))) throw new Error(`${name} is not installed at the top of the monorepo's node_modules`)
    found.set(name, dir)
    queue.push(...installedWith(manifestAt(dir)))
  }
  return found
}

/**
 * Create an application at `dir` whose dependencies are the given tarballs, and install it with npm offline: an
 * empty cache of its own and a closed registry, so anything not among the tarballs fails the install.
 */
export function installApp(dir: string, tarballs: readonly Packed[], devTarballs: readonly Packed[] = []): void {
  mkdirSync(dir, { recursive: true })
  const specs = (list: readonly Packed[]) => Object.fromEntries(list.map((p) => [p.name, `file:${p.tarball}`]))
  const manifest = { name: 'kvorum-packaging-app', private: true, type: 'module', dependencies: specs(tarballs), devDependencies: specs(devTarballs) }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  const flags = ['--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', join(dir, '.npm-cache'), '--registry', CLOSED_REGISTRY]
  runOk('npm', ['install', ...flags], { cwd: dir })
}
