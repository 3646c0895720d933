import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

/**
 * Stand-ins for separate machines on one: each "host" is a network
 * namespace joined to this one by a veth pair (root only), or, without root,
 * a distinct loopback address (127.0.0.2 and up). Every namespace, link and
 * route made here is named after this run and deleted by close().
 */

/** Longest any one `ip` command may take, ms. */
const IP_TIMEOUT_MS = 10_000
/** Most hosts one network makes: one /24 each inside the run's /16. */
const MAX_HOSTS = 32
/** Random subnets tried before giving up. */
const SUBNET_ATTEMPTS = 20

/** One stand-in machine. */
export interface Host {
  readonly index: number
  /** The address its node binds (`--host`) and is reached at. */
  readonly address: string
  /** The command that runs a process on this host: `ip netns exec NS` (empty on loopback). */
  readonly launcher: readonly string[]
}

/** How this machine can make hosts. */
export type HostMode = { readonly kind: 'netns' } | { readonly kind: 'loopback'; readonly reason: string }

function ip(args: readonly string[]): { ok: boolean; output: string } {
  const res = spawnSync('ip', args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS })
  return { ok: res.status === 0, output: `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`.trim() }
}

function mustIp(args: readonly string[]): void {
  const res = ip(args)
  if (!res.ok) throw new Error(`ip ${args.join(' ')} failed: ${res.output}`)
}

/** A name of up to `length` characters unique to this run: interface names have at most 15. */
function runId(): string {
  return `kv${randomBytes(3).toString('hex')}`
}

/**
 * Whether this process can make network namespaces: root, an `ip` command,
 * and the kernel letting it add one (a probe namespace, deleted at once).
 * Otherwise the reason, for the skip message. `KVORUM_MULTIHOST=loopback`
 * asks for loopback addresses even as root.
 */
export function hostMode(): HostMode {
  if (process.env.KVORUM_MULTIHOST === 'loopback') return { kind: 'loopback', reason: 'KVORUM_MULTIHOST=loopback asked for loopback addresses' }
  if (process.platform !== 'linux') return { kind: 'loopback', reason: `network namespaces need Linux, this is ${process.platform}` }
  if (process.getuid?.() !== 0) return { kind: 'loopback', reason: 'network namespaces need root (id -u is not 0)' }
  if (!ip(['-V']).ok) return { kind: 'loopback', reason: 'no `ip` command (iproute2) on PATH' }
  const probe = `${runId()}-probe`
  const added = ip(['netns', 'add', probe])
  if (!added.ok) return { kind: 'loopback', reason: `ip netns add refused: ${added.output}` }
  ip(['netns', 'del', probe])
  return { kind: 'netns' }
}

/** A set of hosts and the links between them and this process. */
export class HostNetwork {
  private readonly made: { netns: string[]; links: string[]; routes: string[] } = { netns: [], links: [], routes: [] }
  private closed = false
  readonly hosts: Host[] = []

  private constructor(
    readonly mode: HostMode,
    private readonly id: string,
  ) {}

  /**
   * `count` hosts. In namespaces: host i is namespace `<run>-h<i>` with
   * address 10.S.i.2, joined by a veth pair whose end here is 10.S.i.1, S
   * picked per run; a blackhole route for 10.S.0.0/16 keeps a host whose
   * link is down from being reached any other way (nothing leaves the
   * machine). On loopback: 127.0.0.(10+i).
   */
  static create(count: number, mode: HostMode): HostNetwork {
    if (count < 1 || count > MAX_HOSTS) throw new Error(`assertion failed: 1..${MAX_HOSTS} hosts, not ${count}`)
    const net = new HostNetwork(mode, runId())
    try {
      if (mode.kind === 'loopback') {
        for (let i = 1; i <= count; i++) net.hosts.push({ index: i, address: `127.0.0.${10 + i}`, launcher: [] })
        return net
      }
      const subnet = net.claimSubnet()
      for (let i = 1; i <= count; i++) net.addNamespace(i, subnet)
      return net
    } catch (e) {
      net.close()
      throw e
    }
  }

  /**
   * A 10.S.0.0/16 no address or route here uses, claimed by adding its
   * blackhole route (which fails if another run claimed it first). Returns S.
   */
  private claimSubnet(): number {
    for (let attempt = 0; attempt < SUBNET_ATTEMPTS; attempt++) {
      const subnet = 16 + ((randomBytes(1)[0] as number) % 200)
      const used = `${ip(['-o', 'addr', 'show']).output}\n${ip(['route', 'show']).output}`
      if (used.includes(`10.${subnet}.`)) continue
      const safety = `10.${subnet}.0.0/16`
      if (!ip(['route', 'add', 'blackhole', safety]).ok) continue
      this.made.routes.push(safety)
      return subnet
    }
    throw new Error(`no free 10.S.0.0/16 found in ${SUBNET_ATTEMPTS} attempts`)
  }

  private addNamespace(i: number, subnet: number): void {
    const ns = `${this.id}-h${i}`
    const outer = `${this.id}o${i}`
    const inner = `${this.id}i${i}`
    mustIp(['netns', 'add', ns])
    this.made.netns.push(ns)
    mustIp(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner])
    this.made.links.push(outer)
    mustIp(['link', 'set', inner, 'netns', ns])
    mustIp(['addr', 'add', `10.${subnet}.${i}.1/24`, 'dev', outer])
    mustIp(['link', 'set', outer, 'up'])
    mustIp(['-n', ns, 'addr', 'add', `10.${subnet}.${i}.2/24`, 'dev', inner])
    mustIp(['-n', ns, 'link', 'set', inner, 'up'])
    mustIp(['-n', ns, 'link', 'set', 'lo', 'up'])
    this.hosts.push({ index: i, address: `10.${subnet}.${i}.2`, launcher: ['ip', 'netns', 'exec', ns] })
  }

  /** The namespace and in-namespace link of host i; throws on loopback. */
  private linkOf(host: Host): { ns: string; inner: string } {
    if (this.mode.kind !== 'netns') throw new Error('assertion failed: links exist only between namespaces')
    return { ns: `${this.id}-h${host.index}`, inner: `${this.id}i${host.index}` }
  }

  /** Take host's link down, from its side: packets to it are dropped, as when a cable is pulled. */
  cut(host: Host): void {
    const { ns, inner } = this.linkOf(host)
    mustIp(['-n', ns, 'link', 'set', inner, 'down'])
  }

  /** Bring host's link back up. */
  heal(host: Host): void {
    const { ns, inner } = this.linkOf(host)
    mustIp(['-n', ns, 'link', 'set', inner, 'up'])
  }

  /** The names this network made that the system still has: empty after close(). */
  leftOver(): string[] {
    const names = ip(['netns', 'list']).output
    const links = ip(['-o', 'link', 'show']).output
    return [...this.made.netns.filter((n) => names.includes(n)), ...this.made.links.filter((l) => links.includes(`${l}@`) || links.includes(`${l}:`))]
  }

  /**
   * Delete every namespace, link and route this network made (deleting a
   * namespace deletes its end of the veth pair, and so the pair). Stop the
   * processes on the hosts first. Safe to call twice.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const link of this.made.links) ip(['link', 'del', link])
    for (const ns of this.made.netns) ip(['netns', 'del', ns])
    for (const route of this.made.routes) ip(['route', 'del', 'blackhole', route])
  }
}
