import { type ReplicaFailure, assert } from '@kvorum/core'

/** What a quorum waits for. */
export interface QuorumNeed {
  /** Acknowledgements in all (primaries and hints). */
  readonly total: number
  /** Acknowledgements from primaries. */
  readonly primaries: number
}

/**
 * Counts replies against a quorum: resolves `met` once `total` acks, of which
 * `primaries` from primaries, are in; `impossible` once too few outstanding
 * replies remain to get there. Pure bookkeeping, no I/O.
 */
export class QuorumTracker {
  acks = 0
  primaryAcks = 0
  readonly failures: ReplicaFailure[] = []
  private outstanding: number
  private outstandingPrimaries: number

  constructor(
    private readonly need: QuorumNeed,
    expected: { total: number; primaries: number },
  ) {
    this.outstanding = expected.total
    this.outstandingPrimaries = expected.primaries
  }

  /** Another request is on its way (e.g. a hint replacing a failed replica). */
  expect(primary: boolean): void {
    this.outstanding++
    if (primary) this.outstandingPrimaries++
  }

  ack(primary: boolean): void {
    this.settle(primary)
    this.acks++
    if (primary) this.primaryAcks++
  }

  fail(primary: boolean, failure: ReplicaFailure): void {
    this.settle(primary)
    this.failures.push(failure)
  }

  /** One expected reply came: a reply nobody expected is a bug in the round. */
  private settle(primary: boolean): void {
    this.outstanding--
    if (primary) this.outstandingPrimaries--
    assert(this.outstanding >= 0 && this.outstandingPrimaries >= 0 && this.outstandingPrimaries <= this.outstanding, 'a quorum counts only replies it expects')
  }

  get met(): boolean {
    return this.acks >= this.need.total && this.primaryAcks >= this.need.primaries
  }

  get impossible(): boolean {
    return this.acks + this.outstanding < this.need.total || this.primaryAcks + this.outstandingPrimaries < this.need.primaries
  }

  get settled(): boolean {
    return this.outstanding === 0
  }
}
