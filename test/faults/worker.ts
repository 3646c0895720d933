/**
 * A fault-suite client process: an application embedding the SDK, reaching
 * every node through its own fault proxies. Started by the parent with an IPC
 * channel (`node --import tsx test/faults/worker.ts`); runs the workloads it
 * is told to and reports every operation as it starts and as it ends.
 */
import { type Kvorum, type ORSet, connect, orSet } from '@kvorum/client'
import { Random } from '../support/random.js'
import { type ParentMessage, STORES, type SdkState, type WorkerConfig, type WorkerEvent } from './protocol.js'
import { type Completion, type LoopContext, registerLoop, setAddLoop } from './workloads.js'

/** Longest the process waits for in-flight work after it was told to stop, ms. */
const CLOSE_GRACE_MS = 2000

let stopping = false

function send(event: WorkerEvent): void {
  if (process.connected) process.send?.(event)
}

/**
 * Parks the loops between operations while the parent holds this client, so
 * its SDK sits idle (holding whatever definition it had) until released.
 */
class Gate {
  private held = false
  private parked = 0
  private readonly waiting: (() => void)[] = []

  constructor(
    private readonly loops: number,
    private readonly onHeld: () => void,
  ) {}

  hold(): void {
    this.held = true
  }

  /** Let every parked loop go on; returns whether the client was held. */
  release(): boolean {
    const was = this.held
    this.held = false
    this.parked = 0
    for (const wake of this.waiting.splice(0)) wake()
    return was
  }

  /** Between two operations: park while held; the last loop to park reports the client held. */
  async pass(): Promise<void> {
    if (!this.held) return
    this.parked++
    if (this.parked === this.loops) this.onHeld()
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }
}

let gate: Gate | undefined
/** A hold that came before the loops started (the SDK still connecting on a loaded machine): the gate starts held. */
let holdEarly = false
let sdk: Kvorum | undefined

function stateOf(kv: Kvorum): SdkState {
  return { version: kv.cluster.version, refreshes: kv.stats().clusterRefreshes, at: Date.now() }
}

async function run(config: WorkerConfig): Promise<void> {
  const kv = await connect({
    seeds: Object.values(config.nodes),
    token: config.token,
    timeoutMs: config.timeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    detector: { probeIntervalMs: 200 },
    resolveUrl: (node) => config.nodes[node.id] ?? node.url,
    ...(config.pollIntervalMs === undefined ? {} : { pollIntervalMs: config.pollIntervalMs }),
  })
  sdk = kv
  // One SDK for the whole life of the process: the parent checks it never needed another.
  send({ type: 'connected', pid: process.pid, ...stateOf(kv) })
  const loopCount = config.loops.set + config.loops.lww + config.loops.register
  gate = new Gate(loopCount, () => send({ type: 'held', ...stateOf(kv) }))
  if (holdEarly) gate.hold()
  const parking = gate
  // One application process delivers hints while the faults go on, as a deployment would.
  if (config.worker === 0) kv.startHandoff({ intervalMs: 500 })
  const rng = new Random(config.seed)
  const random = (n: number) => rng.int(n)
  const endAt = config.startedAt + config.durationMs
  let ops = 0
  const ctx: LoopContext = {
    worker: config.worker,
    running: () => !stopping && Date.now() < endAt && ops < config.maxOps,
    invoke: (workload, kind, key, value) => {
      const op = ops++
      send({ type: 'invoke', op, workload, kind, key, value, at: Date.now() })
      return op
    },
    complete: (op, c: Completion) => send({ type: 'complete', op, ...c, at: Date.now() }),
    random,
    cart: () => `cart-${Math.floor((Date.now() - config.startedAt) / config.epochMs)}-${random(config.cartsPerEpoch)}`,
    registerKey: () => `reg-${Math.floor((Date.now() - config.startedAt) / config.registerEpochMs)}-${random(config.registerKeys)}`,
    think: async () => {
      await new Promise((resolve) => setTimeout(resolve, random(config.thinkMs + 1)))
      await parking.pass()
    },
  }
  const carts = kv.store<ORSet<string>>(STORES.carts, { codec: 'json', merge: orSet.merge })
  const lwwCarts = kv.store<ORSet<string>>(STORES.lww, { codec: 'json', merge: orSet.merge })
  const registers = kv.store<string>(STORES.registers, { codec: 'utf8' })
  const loops: Promise<void>[] = []
  for (let l = 0; l < config.loops.set; l++) loops.push(setAddLoop(ctx, carts, 'set', l))
  for (let l = 0; l < config.loops.lww; l++) loops.push(setAddLoop(ctx, lwwCarts, 'lww', l))
  for (let l = 0; l < config.loops.register; l++) loops.push(registerLoop(ctx, registers, l))
  await Promise.all(loops)
  // Late replica writes, read repairs and parked hints finish before the parent checks anything.
  await kv.close(CLOSE_GRACE_MS)
  // The callback runs once this last message (and so every earlier one) is written to the channel.
  const done: WorkerEvent = { type: 'done', ops, nodes: kv.cluster.nodes.map((n) => n.id), ...stateOf(kv) }
  await new Promise<void>((resolve) => (process.connected ? process.send?.(done, () => resolve()) : resolve()))
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'stop') {
    stopping = true
    gate?.release()
  }
  if (message.type === 'hold') {
    if (gate) gate.hold()
    else holdEarly = true
  }
  if (message.type === 'release' && gate?.release() && sdk) send({ type: 'released', ...stateOf(sdk) })
  if (message.type !== 'start') return
  run(message.config).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`fault worker ${message.config.worker}: ${(e as Error)?.stack ?? String(e)}`)
      process.exit(1)
    },
  )
})
// An orphaned worker (the parent died) stops its loops and exits.
process.on('disconnect', () => {
  stopping = true
  gate?.release()
  setTimeout(() => process.exit(1), CLOSE_GRACE_MS + 3000).unref()
})
send({ type: 'ready' })
