import { createHash } from 'node:crypto'

/** How much of a run to keep as text: nothing (hash only), fault and operation events, or every message too. */
export type TraceLevel = 'none' | 'events' | 'messages'

/**
 * What happened in a run, in order, on the virtual timeline. Every line is
 * hashed whatever the level, so two runs of one seed can be compared for
 * exact replay without keeping their text.
 */
export class Trace {
  readonly lines: string[] = []
  private readonly hash = createHash('sha256')
  /** Engine incarnations are random bytes; traces name them n2#1, n2#2, ... instead. */
  private readonly actors = new Map<string, string>()

  constructor(
    private readonly level: TraceLevel,
    private readonly now: () => number,
  ) {}

  get messages(): boolean {
    return this.level === 'messages'
  }

  /** Name an incarnation for the trace. */
  actor(incarnation: string, label: string): void {
    this.actors.set(incarnation, label)
  }

  /** A readable name for an actor id, e.g. in a dot. */
  name(actor: string): string {
    return this.actors.get(actor) ?? actor
  }

  event(text: string): void {
    this.add(text, this.level !== 'none')
  }

  message(text: string): void {
    this.add(text, this.level === 'messages')
  }

  private add(text: string, keep: boolean): void {
    const line = `${String(Math.floor(this.now())).padStart(6)}ms ${text}`
    this.hash.update(line).update('\n')
    if (keep) this.lines.push(line)
  }

  /** Digest of every line so far (including those not kept). */
  digest(): string {
    return this.hash.copy().digest('hex').slice(0, 16)
  }
}
