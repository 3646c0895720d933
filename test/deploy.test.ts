import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ClusterDef, initialAssignment, storeDef } from '@kvorum/core'
import { HttpTransport } from '@kvorum/client'
import { afterAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { HostNetwork, hostMode } from './support/hosts.js'

/**
 * The files docs/deploy.md hands an operator, checked where they can be: the
 * systemd units and the manifest parse, name the real binaries and only flags
 * those binaries list in their --help, and the container's entry command
 * starts a node that becomes ready.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')
const read = (path: string) => readFileSync(join(DEPLOY, path), 'utf8')

/**
 * Flags the `auth` work adds to kvorum-node and the CLI. Until a build's
 * --help lists TLS flags, these may be missing from it (and are printed);
 * once it lists them, every flag the files use must be in --help.
 */
const AWAITED_NODE_FLAGS = ['config', 'tls-cert', 'tls-key', 'tls-client-ca', 'data-token-file', 'admin-token-file', 'metrics-token-file']
const AWAITED_CLI_FLAGS = ['token-file', 'tls-ca', 'tls-cert', 'tls-key']
/** Longest the container's node may take to start, and to stop, ms. */
const START_MS = 15_000
const STOP_MS = 10_000
const MODE = hostMode()

/** What the tests started, undone in reverse order whatever happened. */
const cleanups: (() => void | Promise<void>)[] = []
afterAll(async () => {
  for (const undo of cleanups.reverse()) await undo()
})

/** SIGKILL a child by its PID if it still runs, and wait for its exit. */
async function killByPid(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  process.kill(child.pid, 'SIGKILL')
  await exited
}

/** A systemd unit file: its sections, each a list of key=value settings in order (continuation lines joined). */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>()
  let section: [string, string][] | undefined
  const lines = text.replace(/\\\n/g, ' ').split('\n')
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[([A-Za-z]+)\]$/.exec(line)
    if (header) {
      section = []
      sections.set(header[1] as string, section)
      continue
    }
    const eq = line.indexOf('=')
    if (!section || eq <= 0) throw new Error(`line ${i + 1} is neither a [Section] nor Key=value: ${line}`)
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()])
  }
  return sections
}

function setting(unit: Map<string, [string, string][]>, section: string, key: string): string {
  const found = unit.get(section)?.filter(([k]) => k === key) ?? []
  if (found.length !== 1) throw new Error(`[${section}] must have exactly one ${key}, has ${found.length}`)
  return (found[0] as [string, string])[1]
}

/** The flags (`--name`, without `--`) of an argument list, and the value after each. */
function flagsOf(argv: readonly string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  argv.forEach((a, i) => {
    if (a.startsWith('--')) out.set(a.slice(2).split('=')[0] as string, argv[i + 1]?.startsWith('--') ? undefined : argv[i + 1])
  })
  return out
}

/** Every `--flag` a program's help texts name. */
function helpFlags(bin: string, helps: readonly string[][]): Set<string> {
  const out = new Set<string>()
  for (const args of helps) {
    const res = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 10_000 })
    for (const m of `${res.stdout}${res.stderr}`.matchAll(/--([a-z][a-z0-9-]*)/g)) out.add(m[1] as string)
  }
  return out
}

/** A package's bins: name to file, as npm links them. */
function bins(pkg: string): Record<string, string> {
  const json = JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  return Object.fromEntries(Object.entries(json.bin).map(([name, file]) => [name, join(ROOT, pkg, file)]))
}

const NODE_BIN = bins('apps/node')['kvorum-node'] as string
const CLI_BIN = bins('apps/cli').kvorum as string
const NODE_HELP = helpFlags(NODE_BIN, [['--help']])
const CLI_HELP = helpFlags(CLI_BIN, [['--help'], ['repair', '--help'], ['get', '--help'], ['cluster', 'init', '--help']])

/** The flags of `used` that `known` lacks; before the awaited flags exist, those may be missing (and are printed). */
function unknownFlags(used: Iterable<string>, known: Set<string>, awaited: readonly string[], what: string): string[] {
  const unknown = [...new Set(used)].filter((f) => !known.has(f)).sort()
  if (known.has('tls-cert')) return unknown
  const waiting = unknown.filter((f) => awaited.includes(f))
  if (waiting.length > 0)
    console.log(`deploy: ${what} uses ${waiting.map((f) => `--${f}`).join(' ')}, not in this build's --help yet (the auth work adds them)`)
  return unknown.filter((f) => !awaited.includes(f))
}

describe('deployment files (deploy/)', () => {
  it('the node unit runs the real kvorum-node with flags it takes, settings in a config file whose keys are its flags', () => {
    const unit = parseUnit(read('systemd/kvorum-node.service'))
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install'])
    const argv = setting(unit, 'Service', 'ExecStart').split(/\s+/)
    expect(basename(argv[0] as string)).toBe('kvorum-node')
    const flags = flagsOf(argv.slice(1))
    expect(unknownFlags(flags.keys(), NODE_HELP, AWAITED_NODE_FLAGS, 'kvorum-node.service')).toEqual([])
    // Nothing secret on the command line, where ps shows it.
    expect([...flags.keys()].filter((f) => /token$/.test(f))).toEqual([])
    expect(flags.get('config')).toBe('/etc/kvorum/node.json')
    expect(setting(unit, 'Service', 'ExecReload')).toContain('-HUP $MAINPID')
    expect(setting(unit, 'Service', 'KillSignal')).toBe('SIGTERM')
    const config = JSON.parse(read('config/node.json')) as Record<string, string | number>
    expect(unknownFlags(Object.keys(config), NODE_HELP, AWAITED_NODE_FLAGS, 'config/node.json')).toEqual([])
    expect(Object.keys(config).filter((k) => /token$/.test(k))).toEqual([])
    // The data directory is the state directory systemd makes, and the one place the sandbox lets it write.
    expect(config.data).toBe(`/var/lib/${setting(unit, 'Service', 'StateDirectory')}`)
    expect(setting(unit, 'Service', 'ReadWritePaths').split(/\s+/)).toContain(config.data)
    // The node's own exit code for a wrong flag is not worth a restart.
    expect(setting(unit, 'Service', 'RestartPreventExitStatus')).toBe('2')
    expect(spawnSync(process.execPath, [NODE_BIN, '--port', 'x'], { encoding: 'utf8', timeout: 10_000 }).status).toBe(2)
  })

  it('the repair unit runs `kvorum repair --daemon` with flags the CLI takes, its token from a file', () => {
    const unit = parseUnit(read('systemd/kvorum-repair.service'))
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install'])
    const argv = setting(unit, 'Service', 'ExecStart').split(/\s+/)
    expect(basename(argv[0] as string)).toBe('kvorum')
    expect(argv.slice(1, 3)).toEqual(['repair', '--daemon'])
    const flags = flagsOf(argv.slice(1))
    expect(unknownFlags(flags.keys(), CLI_HELP, AWAITED_CLI_FLAGS, 'kvorum-repair.service')).toEqual([])
    expect(flags.has('token')).toBe(false)
    expect(
      flags
        .get('seeds')
        ?.split(',')
        .every((s) => /^https:\/\/[a-z0-9.-]+:\d+$/.test(s)),
    ).toBe(true)
  })

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8', timeout: 10_000 }).status === 0
  it.skipIf(!analyze)(
    `systemd-analyze verify takes both units without a warning (their binaries pointed at this checkout's)${analyze ? '' : ' (skipped: no systemd-analyze on PATH)'}`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvorum-units-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      const real: Record<string, string> = { 'kvorum-node': NODE_BIN, kvorum: CLI_BIN }
      for (const name of ['kvorum-node.service', 'kvorum-repair.service']) {
        const text = read(`systemd/${name}`).replace(/^ExecStart=\/usr\/local\/bin\/(\S+)/m, (_, bin: string) => `ExecStart=${real[bin] ?? bin}`)
        writeFileSync(join(dir, name), text)
        const res = spawnSync('systemd-analyze', ['verify', join(dir, name)], { encoding: 'utf8', timeout: 30_000 })
        expect({ status: res.status, said: `${res.stdout}${res.stderr}`.trim() }).toEqual({ status: 0, said: '' })
      }
    },
  )

  it('the Kubernetes manifest parses: a StatefulSet behind a headless Service, ready on /health?ready=1, and one repair daemon', () => {
    // YAML 1.1, as Kubernetes reads it: 0440 is octal there.
    const docs = parseAllDocuments(read('kubernetes/kvorum.yaml'), { version: '1.1' })
    expect(docs.flatMap((d) => d.errors.map((e) => e.message))).toEqual([])
    // biome-ignore lint/suspicious/noExplicitAny: a manifest is untyped YAML; each field read is checked below.
    const objects = docs.map((d) => d.toJS() as any)
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind)
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`)).toEqual(['v1 Service', 'v1 ConfigMap', 'apps/v1 StatefulSet', 'apps/v1 Deployment'])
    const [svc] = byKind('Service')
    const [sts] = byKind('StatefulSet')
    const [cm] = byKind('ConfigMap')
    const [repair] = byKind('Deployment')
    expect(svc.spec.clusterIP).toBe('None')
    expect(svc.spec.publishNotReadyAddresses).toBe(true)
    expect(sts.spec.serviceName).toBe(svc.metadata.name)
    expect(sts.spec.podManagementPolicy).toBe('Parallel')
    const labels = sts.spec.template.metadata.labels
    expect(labels).toMatchObject(sts.spec.selector.matchLabels)
    expect(labels).toMatchObject(svc.spec.selector)
    const [node] = sts.spec.template.spec.containers
    const flags = flagsOf(node.args)
    expect(unknownFlags(flags.keys(), NODE_HELP, AWAITED_NODE_FLAGS, 'the StatefulSet')).toEqual([])
    const port = node.ports.find((p: { name: string }) => p.name === node.readinessProbe.httpGet.port)
    expect(port?.containerPort).toBe(Number(flags.get('port')))
    expect(node.readinessProbe.httpGet.path).toBe('/health?ready=1')
    expect(node.livenessProbe.httpGet.path).toBe('/health')
    expect(flags.get('id')).toBe('$(POD_NAME)')
    expect(node.env.find((e: { name: string }) => e.name === 'POD_NAME')?.valueFrom.fieldRef.fieldPath).toBe('metadata.name')
    // The data directory is the claim's volume; the config file is the ConfigMap's key.
    const mount = (path: string) => node.volumeMounts.find((m: { mountPath: string }) => m.mountPath === path)
    expect(mount(flags.get('data') as string)?.name).toBe(sts.spec.volumeClaimTemplates[0].metadata.name)
    const configMount = mount(flags.get('config') as string)
    const configVolume = sts.spec.template.spec.volumes.find((v: { name: string }) => v.name === configMount?.name)
    expect(configVolume?.configMap.name).toBe(cm.metadata.name)
    const config = JSON.parse(cm.data[configMount.subPath]) as Record<string, string>
    expect(unknownFlags(Object.keys(config), NODE_HELP, AWAITED_NODE_FLAGS, 'the ConfigMap')).toEqual([])
    // Every file the config names is in the mounted Secret, readable by the pod's group (the node does not run as root).
    const secrets = node.volumeMounts.find((m: { name: string }) => m.name === 'secrets')
    for (const [key, path] of Object.entries(config).filter(([k]) => /-file$|^tls-/.test(k))) expect(path.startsWith(`${secrets.mountPath}/`), key).toBe(true)
    expect(sts.spec.template.spec.securityContext.runAsNonRoot).toBe(true)
    const secretVolume = sts.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'secrets')
    expect(secretVolume.secret.defaultMode).toBe(0o440)
    // The repair daemon: the CLI's bin, flags it takes, a seed per pod by its stable name.
    expect(repair.spec.replicas).toBe(1)
    const [daemon] = repair.spec.template.spec.containers
    expect(daemon.command).toEqual(['kvorum'])
    expect(daemon.args.slice(0, 2)).toEqual(['repair', '--daemon'])
    const repairFlags = flagsOf(daemon.args)
    expect(unknownFlags(repairFlags.keys(), CLI_HELP, AWAITED_CLI_FLAGS, 'the repair Deployment')).toEqual([])
    const pods = Array.from({ length: sts.spec.replicas }, (_, i) => `https://${sts.metadata.name}-${i}.${svc.metadata.name}:${flags.get('port')}`)
    expect(repairFlags.get('seeds')?.split(',')).toEqual(pods)
  })

  it('the container image runs the real kvorum-node: its entry command starts a node that becomes ready once it holds a definition', async () => {
    const file = read('Containerfile').replace(/\\\n/g, ' ')
    const instructions = file
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
    const of = (word: string) => instructions.filter((l) => l.startsWith(`${word} `)).map((l) => l.slice(word.length + 1).trim())
    expect(of('FROM').every((f) => /^docker\.io\/library\/node:20[-\w]*( AS \w+)?$/.test(f))).toBe(true)
    // What the build copies from the repository exists in it.
    for (const copy of of('COPY').filter((c) => !c.startsWith('--from'))) {
      for (const source of copy.split(/\s+/).slice(0, -1)) expect(existsSync(join(ROOT, source)), source).toBe(true)
    }
    const entry = JSON.parse(of('ENTRYPOINT').at(-1) as string) as string[]
    const cmd = JSON.parse(of('CMD').at(-1) as string) as string[]
    expect(entry).toEqual(['kvorum-node'])
    // On the image's PATH, kvorum-node is the package's own bin.
    const link = /ln -s \/opt\/kvorum\/(\S+) \/usr\/local\/bin\/kvorum-node\b/.exec(file)
    expect(join(ROOT, link?.[1] ?? 'missing')).toBe(NODE_BIN)
    expect(unknownFlags(flagsOf(cmd).keys(), NODE_HELP, AWAITED_NODE_FLAGS, 'the Containerfile')).toEqual([])
    const data = mkdtempSync(join(tmpdir(), 'kvorum-container-'))
    // As root the flags run as they are, 0.0.0.0 and all, in a namespace of their own (nothing else reaches it);
    // otherwise the address becomes 127.0.0.1 and the port the system's pick, so the test stays on loopback.
    const net = MODE.kind === 'netns' ? HostNetwork.create(1, MODE) : undefined
    cleanups.push(() => {
      net?.close()
      rmSync(data, { recursive: true, force: true })
    })
    const args = cmd.map((a, i) => {
      if (cmd[i - 1] === '--data') return data
      if (!net && cmd[i - 1] === '--host') return '127.0.0.1'
      if (!net && cmd[i - 1] === '--port') return '0'
      return a
    })
    const launcher = net?.hosts[0]?.launcher ?? []
    const [command, ...prefix] = [...launcher, process.execPath]
    const child = spawn(command as string, [...prefix, NODE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    cleanups.push(() => killByPid(child))
    let output = ''
    child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4096)))
    child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4096)))
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kvorum-node ${args.join(' ')} was not listening within ${START_MS} ms:\n${output}`)), START_MS)
      child.on('message', (m: { ready?: boolean; port?: number }) => {
        if (m.ready && typeof m.port === 'number') {
          clearTimeout(timer)
          resolve(m.port)
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`kvorum-node ${args.join(' ')} exited ${code}:\n${output}`))
      })
    })
    const url = `http://${net ? net.hosts[0]?.address : '127.0.0.1'}:${port}`
    if (net) expect(port).toBe(Number(flagsOf(cmd).get('port')))
    const probe = async (path: string) => {
      const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(3000) })
      return { status: res.status, body: (await res.json()) as { code?: string; status?: string; id?: string } }
    }
    const alive = await probe('/health')
    expect(alive).toMatchObject({ status: 200, body: { status: 'ok' } })
    // Not ready until it holds a cluster definition, as the readiness probe expects.
    expect(await probe('/health?ready=1')).toMatchObject({ status: 503, body: { code: 'KV_NO_CLUSTER' } })
    const nodes = [{ id: alive.body.id as string, url }]
    const def: ClusterDef = {
      version: 1,
      partitions: 8,
      nodes,
      assignment: initialAssignment(nodes, 8),
      stores: [storeDef({ name: 'default', n: 1, r: 1, w: 1 })],
    }
    const transport = new HttpTransport({})
    try {
      await transport.node(nodes[0] as { id: string; url: string }).putCluster({ timeoutMs: 5000 }, def)
    } finally {
      await transport.close()
    }
    expect(await probe('/health?ready=1')).toMatchObject({ status: 200, body: { status: 'ok' } })
    // Stopped by its PID, as a container runtime stops it: SIGTERM, a clean exit.
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    process.kill(child.pid as number, 'SIGTERM')
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), STOP_MS))])).toBe(0)
  }, 60_000)
})
