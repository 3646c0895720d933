/** A version vector: actor (a node incarnation) to the highest counter seen. */
export type VersionVector = Readonly<Record<string, number>>

/** A dot: the event `counter` of `actor`, naming exactly one version. */
export interface Dot {
  readonly actor: string
  readonly counter: number
}

export const EMPTY_VV: VersionVector = Object.freeze({})

/** True when the vector has seen the dot. */
export function covers(vv: VersionVector, dot: Dot): boolean {
  return (vv[dot.actor] ?? 0) >= dot.counter
}

/** Pointwise maximum of vectors. */
export function join(...vvs: readonly VersionVector[]): VersionVector {
  const out: Record<string, number> = {}
  for (const vv of vvs) for (const actor in vv) out[actor] = Math.max(out[actor] ?? 0, vv[actor] as number)
  return out
}

/** The vector plus one dot. */
export function withDot(vv: VersionVector, dot: Dot): VersionVector {
  if (covers(vv, dot)) return vv
  return { ...vv, [dot.actor]: dot.counter }
}

/** True when a has seen everything b has. */
export function descends(a: VersionVector, b: VersionVector): boolean {
  for (const actor in b) if ((a[actor] ?? 0) < (b[actor] as number)) return false
  return true
}

export function dotEquals(a: Dot, b: Dot): boolean {
  return a.actor === b.actor && a.counter === b.counter
}

/** Total order on dots, for canonical sibling order. */
export function compareDots(a: Dot, b: Dot): number {
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1
  return a.counter - b.counter
}

export function clockSize(vv: VersionVector): number {
  return Object.keys(vv).length
}
