/** A version vector: actor (a node incarnation) to the highest counter seen. */
export type VersionVector = Readonly<Record<string, number>>

/** A dot: the event `counter` of `actor`, naming exactly one version. */
export interface Dot {
  readonly actor: string
  readonly counter: number
}

/**
 * The counter of an actor in a vector, 0 when absent. Own properties only: the
 * actor alphabet allows `constructor`, which a plain `vv[actor]` would read
 * from Object.prototype.
 */
export function counterOf(vv: VersionVector, actor: string): number {
  return Object.hasOwn(vv, actor) ? (vv[actor] as number) : 0
}

/** True when the vector has seen the dot. */
export function covers(vv: VersionVector, dot: Dot): boolean {
  return counterOf(vv, dot.actor) >= dot.counter
}

/** Pointwise maximum of vectors. */
export function join(...vvs: readonly VersionVector[]): VersionVector {
  const out: Record<string, number> = {}
  for (const vv of vvs) for (const actor in vv) out[actor] = Math.max(counterOf(out, actor), vv[actor] as number)
  return out
}

/** The vector plus one dot. */
export function withDot(vv: VersionVector, dot: Dot): VersionVector {
  if (covers(vv, dot)) return vv
  return { ...vv, [dot.actor]: dot.counter }
}

/** True when a has seen everything b has. */
export function descends(a: VersionVector, b: VersionVector): boolean {
  for (const actor in b) if (counterOf(a, actor) < (b[actor] as number)) return false
  return true
}

/** Total order on dots, for canonical sibling order. */
export function compareDots(a: Dot, b: Dot): number {
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1
  return a.counter - b.counter
}
