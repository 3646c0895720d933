import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DependencyFields, type Packed, ROOT, cleanEnv, installApp, installedWith, pack, run, thirdParty } from './support/packages.js'
import { runGroup } from './support/process-group.js'
import { type ProcessCluster, startCluster } from './support/process-cluster.js'

/**
 * The packages as npm would publish them: packed into tarballs, installed into applications outside the
 * monorepo with npm offline (no registry at all), the README's SDK example type-checked there under `strict` and
 * `exactOptionalPropertyTypes` and run against a real cluster, and the CLI installed without kvorum-node (so
 * without better-sqlite3) talking to that cluster.
 */

/** Every workspace: each is packed and must be publishable. */
const WORKSPACES = ['packages/core', 'packages/client', 'packages/storage', 'apps/node', 'apps/cli'] as const
/** The packages a user installs without building anything native; the test installs these. */
const WITHOUT_NATIVE = ['@kvorum/core', '@kvorum/client', 'kvorum'] as const
/** The SDK's application has these for its type-check, as a TypeScript project would. */
const TYPE_PACKAGES = ['@types/node']
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

let work = ''
let packed = new Map<string, Packed>()
let sdkApp = ''
let cliApp = ''
let cluster: ProcessCluster | undefined

function tarball(name: string): Packed {
  const found = packed.get(name)
  if (!found) throw new Error(`${name} was not packed`)
  return found
}

/** A port nothing listens on at the moment, from the OS. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** The first TypeScript block of a README (the repository's: its SDK example), which imports `@kvorum/client`. */
function readmeExample(readme: string): string {
  const example = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, readme), 'utf8'))?.[1]
  if (!example?.includes("from '@kvorum/client'")) throw new Error(`${readme} has no example importing @kvorum/client`)
  return example
}

interface Manifest extends DependencyFields {
  readonly private?: boolean
  readonly license?: string
  readonly repository?: unknown
  readonly main?: string
  readonly types?: string
  readonly bin?: Record<string, string>
}

function manifestOf(workspaceDir: string): Manifest {
  return JSON.parse(readFileSync(join(ROOT, workspaceDir, 'package.json'), 'utf8')) as Manifest
}

function isWithoutNative(name: string): boolean {
  return (WITHOUT_NATIVE as readonly string[]).includes(name)
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kvorum-package-'))
  const manifests = WORKSPACES.map((dir) => manifestOf(dir))
  const runtime = thirdParty(manifests.filter((m) => isWithoutNative(m.name)).flatMap(installedWith))
  const types = new Map([...thirdParty(TYPE_PACKAGES)].filter(([name]) => !runtime.has(name)))
  const dirs = [...WORKSPACES.map((dir) => join(ROOT, dir)), ...runtime.values(), ...types.values()]
  packed = new Map(pack(dirs, join(work, 'tarballs')).map((p) => [p.name, p]))
  const runtimeTarballs = [...runtime.keys()].map(tarball)
  sdkApp = join(work, 'sdk-app')
  installApp(sdkApp, [tarball('@kvorum/core'), tarball('@kvorum/client'), ...runtimeTarballs], [...types.keys()].map(tarball))
  cliApp = join(work, 'cli-app')
  installApp(cliApp, [...WITHOUT_NATIVE.map(tarball), ...runtimeTarballs])
  cluster = await startCluster({ stores: [{ name: 'default' }] })
}, 90_000)

afterAll(async () => {
  await cluster?.close()
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('installing by name', () => {
  it('every bin is a file in the repository, not under dist/: npm links bins while npm ci installs, before anything is built', () => {
    for (const dir of ['apps/cli', 'apps/node']) {
      const bins = Object.values(manifestOf(dir).bin ?? {})
      expect(bins.length).toBe(1)
      for (const bin of bins) {
        expect(bin.startsWith('./dist/'), `${dir}: ${bin}`).toBe(false)
        expect(existsSync(join(ROOT, dir, bin)), `${dir}: ${bin}`).toBe(true)
      }
    }
  })

  it('packs every workspace as a publishable package: license, repository, README, LICENSE, main/types, no tests', () => {
    const repository = (manifestOf('.').repository as { url: string }).url
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8')
    for (const dir of WORKSPACES) {
      const manifest = manifestOf(dir)
      const files = tarball(manifest.name).files
      expect(manifest.private, dir).toBeUndefined()
      expect(manifest.license, dir).toBe('MIT')
      expect(manifest.repository, dir).toEqual({ type: 'git', url: repository, directory: dir })
      expect(files, dir).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']))
      expect(readFileSync(join(ROOT, dir, 'LICENSE'), 'utf8'), `${dir}/LICENSE is the repository's`).toBe(license)
      expect(
        files.filter((f) => /\.(test|case)\.ts$/.test(f)),
        dir,
      ).toEqual([])
      // A library names its entry for resolvers that predate `exports`; the CLI is only a bin.
      if (dir === 'apps/cli') continue
      for (const entry of [manifest.main, manifest.types]) expect(files, `${dir}: ${entry}`).toContain(entry?.replace(/^\.\//, ''))
    }
  })

  it('ships the files its source maps and declaration maps point at', () => {
    let maps = 0
    for (const dir of WORKSPACES) {
      const files = new Set(tarball(manifestOf(dir).name).files)
      for (const map of files) {
        if (!map.endsWith('.map')) continue
        maps++
        const { sources } = JSON.parse(readFileSync(join(ROOT, dir, map), 'utf8')) as { sources: string[] }
        for (const source of sources) expect(files.has(posix.join(posix.dirname(map), source)), `${dir}/${map} → ${source}`).toBe(true)
      }
    }
    expect(maps).toBeGreaterThan(100)
  })
})

describe("the README's SDK example in an application of its own", () => {
  it('type-checks under strict and exactOptionalPropertyTypes, with the packages’ declarations checked too', () => {
    const seed = (cluster as ProcessCluster).seeds[0] as string
    // The example talks to `npm start`'s seed; point it at this test's cluster and check what it leaves behind.
    const afterwards = `
const checker = await connect({ seeds: [${JSON.stringify(seed)}], token: process.env.KVORUM_TOKEN })
const afterwards = await checker.store('default').get('alice', { r: 3 })
const untouched = await checker.store('default').get('never-written', { r: 3 })
await checker.close()
if (afterwards.found) throw new Error('the example deletes the cart at its end')
if (afterwards.context === untouched.context) throw new Error('the example left no tombstone for alice: did it write at all?')
console.log('example ok')
`
    writeFileSync(join(sdkApp, 'example.ts'), readmeExample('README.md').replace('http://127.0.0.1:7070', seed) + afterwards)
    // The packages' own READMEs show examples too; they are type-checked (not run) with it.
    writeFileSync(join(sdkApp, 'core-readme.ts'), readmeExample('packages/core/README.md'))
    writeFileSync(join(sdkApp, 'client-readme.ts'), readmeExample('packages/client/README.md'))
    // A control the same compiler must reject, so a lax configuration cannot pass the example by accident.
    writeFileSync(
      join(sdkApp, 'control.ts'),
      'const maybe: string | undefined = process.env.NOTHING\nexport const exact: { token?: string } = { token: maybe }\n',
    )
    const compilerOptions = {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023'],
      types: ['node'],
      strict: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false,
      outDir: 'dist',
    }
    writeFileSync(join(sdkApp, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['example.ts', 'core-readme.ts', 'client-readme.ts', 'control.ts'] }))
    const tsc = run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: sdkApp })
    const errors = tsc.stdout.split('\n').filter((line) => line.includes('error TS'))
    expect(
      errors.filter((line) => !line.startsWith('control.ts')),
      tsc.stdout,
    ).toEqual([])
    expect(
      errors.some((line) => line.startsWith('control.ts') && line.includes('TS2375')),
      tsc.stdout,
    ).toBe(true)
    expect(existsSync(join(sdkApp, 'dist/example.js'))).toBe(true)
  }, 30_000)

  it('type-checks through main/types for a resolver that ignores exports (moduleResolution node10)', () => {
    writeFileSync(
      join(sdkApp, 'legacy.ts'),
      "import { connect } from '@kvorum/client'\nimport { ERROR_CODES } from '@kvorum/core'\nexport const used: [typeof connect, number] = [connect, ERROR_CODES.KV_TIMEOUT.status]\n",
    )
    // Only the resolution is under test here (the declarations were checked above): skip them, and Node's types.
    const compilerOptions = { target: 'ES2022', module: 'ES2022', moduleResolution: 'node10', types: [], skipLibCheck: true, strict: true, noEmit: true }
    writeFileSync(join(sdkApp, 'tsconfig.legacy.json'), JSON.stringify({ compilerOptions, files: ['legacy.ts'] }))
    const tsc = run(process.execPath, [TSC, '-p', 'tsconfig.legacy.json'], { cwd: sdkApp })
    expect(tsc.stdout, 'tsc').toBe('')
    expect(tsc.status).toBe(0)
  }, 30_000)

  it('runs against a real cluster', () => {
    const example = join(sdkApp, 'dist/example.js')
    expect(existsSync(example), 'compiled by the type-check above').toBe(true)
    const env = cleanEnv({ KVORUM_TOKEN: (cluster as ProcessCluster).token })
    const result = run(process.execPath, [example], { cwd: sdkApp, env })
    expect(result.stderr).toBe('')
    expect(result.stdout.trim()).toBe('example ok')
    expect(result.status).toBe(0)
  }, 30_000)
})

describe('the CLI installed on its own', () => {
  const kvorum = (args: readonly string[]) => run('npx', ['--offline', 'kvorum', ...args], { cwd: cliApp })

  it('installs neither kvorum-node nor better-sqlite3', () => {
    const installed = readdirSync(join(cliApp, 'node_modules'), { recursive: true, encoding: 'utf8' })
    expect(installed.filter((path) => /(^|\/)(better-sqlite3|kvorum-node)$/.test(path))).toEqual([])
    expect(existsSync(join(cliApp, 'node_modules/.bin/kvorum'))).toBe(true)
  })

  it('puts and gets against the cluster with npx kvorum', () => {
    const { seeds, token } = cluster as ProcessCluster
    const flags = ['--seeds', seeds[0] as string, '--token', token]
    const put = kvorum(['put', 'default', 'installed-cli', 'it works', ...flags])
    expect(put.status, put.stderr).toBe(0)
    const get = kvorum(['get', 'default', 'installed-cli', ...flags])
    expect(get.status, get.stderr).toBe(0)
    expect(get.stdout.split('\n')).toContain('it works')
  }, 30_000)

  it('prints its version and the help of dev and bench without kvorum-node', () => {
    const version = kvorum(['--version'])
    expect(version.status, version.stderr).toBe(0)
    expect(version.stdout).toContain(tarball('kvorum').version)
    for (const command of ['dev', 'bench']) {
      const help = kvorum([command, '--help'])
      expect(help.status, help.stderr).toBe(0)
      expect(help.stdout).toMatch(new RegExp(`kvorum ${command}`))
    }
  }, 30_000)

  it.each(['dev', 'bench'])(
    'kvorum %s fails with one line that says to npm install kvorum-node, and starts nothing',
    async (command) => {
      // dev checks its ports before anything else: give it a free one, so only the missing package can stop it.
      const args = command === 'dev' ? ['--nodes', '1', '--base-port', String(await freePort()), '--data', join(work, 'no-node-dev')] : ['--duration', '1']
      // In a process group of its own: were it to start nodes after all, the test would still stop every one of them.
      const result = await runGroup('npx', ['--offline', 'kvorum', command, ...args], { cwd: cliApp, env: cleanEnv(), timeoutMs: 20_000 })
      expect(result.status).not.toBe(0)
      expect(result.stdout).not.toMatch(/cluster ready/)
      const lines = result.stderr.trim().split('\n')
      expect(lines, result.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(/KV_MISSING_PACKAGE.*npm install kvorum-node/)
      // It stops before it writes anything: no token, no node directories.
      if (command === 'dev') expect(existsSync(join(work, 'no-node-dev'))).toBe(false)
    },
    30_000,
  )
})
