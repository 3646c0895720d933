import type { ClusterDef, NodeDef } from './cluster.js'
import { InvalidInputError, assert } from './errors.js'
import { Ring } from './ring.js'

/**
 * Replica-aware claim: choose a new assignment for a new node set so that as
 * few replica-partitions move as possible (MEMBERSHIP.md rule 10).
 *
 * Movement is counted in replica-partitions, not assignment entries: the
 * preference list of p walks the owners of p, p+1, ... so changing one owner
 * changes the replica sets of the partitions before it. The claim therefore
 * scores every candidate entry by its effect on the actual preference lists
 * (the same walk and zone rule as Ring, checked against Ring at the end).
 */

/** The part of a cluster definition that replica placement depends on. */
export type Layout = Pick<ClusterDef, 'assignment' | 'nodes'>

/** Options of claim. */
export interface ClaimOptions {
  /**
   * Permit a change to the set of zones (a node in a new zone, or the last
   * node of a zone leaving). It reorders most preference lists, so it must be
   * asked for. Default false.
   */
  readonly allowNewZone?: boolean
}

/** What a change of assignment moves, for `plan` to print. */
export interface Movement {
  /** Partitions whose owner changed. */
  readonly entriesMoved: number
  /** Pairs (p, node) with node among p's n primaries after but not before. */
  readonly replicaPartitionsMoved: number
  /** Moved replica-partitions whose node was already in the cluster before. */
  readonly movedOntoOldNodes: number
  /** Moves onto old nodes beyond the slots that leavers vacated in that partition: each is avoidable movement. */
  readonly movedOntoOldNodesUnforced: number
  /** Moved replica-partitions whose zone matches none of the replicas that left that partition. */
  readonly movedAcrossZones: number
  /** Partitions each node (of the cluster before) is a primary for. */
  readonly loadBefore: Record<string, number>
  /** Partitions each node (of the cluster after) is a primary for. */
  readonly loadAfter: Record<string, number>
  /** Fair load of each node after the change: n·Q/N′ without zones; with zones, its zone's load shared by the zone's nodes (see idealLoads). */
  readonly idealLoad: Record<string, number>
  /** Sum of the fair loads of the nodes that joined (the ideal number of replica-partitions they receive). */
  readonly joinerIdeal: number
  /** Sum of the loads the joiners actually receive. */
  readonly joinerLoad: number
}

const at = (a: ArrayLike<number>, i: number): number => a[i] as number

const zoneOf = (node: NodeDef): string => node.zone ?? ''

/** Mutable assignment (as node indexes) with every partition's primaries kept current. */
class Board {
  readonly q: number
  readonly owner: Int32Array
  readonly zone: Int32Array
  readonly prim: number[][]
  readonly span: Int32Array
  readonly load: Int32Array
  readonly entries: Int32Array
  /** Largest span ever computed: a change at c can only affect partitions within reach before c. */
  reach = 0
  private stamp = 0
  private readonly seenAt: Int32Array
  private readonly chosenAt: Int32Array
  private readonly zoneAt: Int32Array

  constructor(
    readonly ids: readonly string[],
    zones: readonly number[],
    readonly zoneCount: number,
    assignment: readonly string[],
    readonly n: number,
  ) {
    const index = new Map(ids.map((id, i) => [id, i]))
    this.q = assignment.length
    this.owner = Int32Array.from(assignment, (id) => index.get(id) as number)
    this.zone = Int32Array.from(zones)
    this.seenAt = new Int32Array(ids.length)
    this.chosenAt = new Int32Array(ids.length)
    this.zoneAt = new Int32Array(Math.max(...zones, 0) + 1)
    this.span = new Int32Array(this.q)
    this.load = new Int32Array(ids.length)
    this.entries = new Int32Array(ids.length)
    for (const o of this.owner) this.entries[o] = at(this.entries, o) + 1
    this.prim = Array.from({ length: this.q }, () => [])
    this.refreshAll()
  }

  /** Recompute every partition's primaries from scratch (cached scores must not outlive this). */
  refreshAll(): void {
    this.load.fill(0)
    this.reach = 0
    for (let p = 0; p < this.q; p++) {
      const { nodes, span } = this.primariesOf(p)
      this.prim[p] = nodes
      this.span[p] = span
      this.reach = Math.max(this.reach, span)
      for (const x of nodes) this.load[x] = at(this.load, x) + 1
    }
  }

  /**
   * Ring.zoneOrder over the walk of distinct owners from p, walking only as
   * far as needed; span is how many entries from p the answer depends on.
   */
  primariesOf(p: number): { nodes: number[]; span: number } {
    const walk: number[] = []
    const chosen: number[] = []
    const st = ++this.stamp
    let zst = ++this.stamp
    let covered = 0
    let pos = 0
    while (chosen.length < this.n) {
      let pick = walk.find((x) => this.chosenAt[x] !== st && this.zoneAt[at(this.zone, x)] !== zst) ?? -1
      while (pick < 0 && pos < this.q && walk.length < this.ids.length) {
        const x = at(this.owner, (p + pos) % this.q)
        pos++
        if (this.seenAt[x] === st) continue
        this.seenAt[x] = st
        walk.push(x)
        if (this.zoneAt[at(this.zone, x)] !== zst) pick = x
      }
      // No unchosen node of an uncovered zone: Ring then takes the next unchosen node in walk order.
      if (pick < 0) pick = walk.find((x) => this.chosenAt[x] !== st) ?? -1
      if (pick < 0) break
      this.chosenAt[pick] = st
      chosen.push(pick)
      const z = at(this.zone, pick)
      if (this.zoneAt[z] !== zst) {
        this.zoneAt[z] = zst
        covered++
      }
      if (covered >= this.zoneCount) {
        zst = ++this.stamp
        covered = 0
      }
    }
    return { nodes: chosen, span: pos }
  }

  /** The partitions whose primaries would change if c were owned by x, with their new primaries. */
  tryOwner(c: number, x: number): { p: number; nodes: number[] }[] {
    const old = at(this.owner, c)
    this.owner[c] = x
    const out: { p: number; nodes: number[] }[] = []
    for (let d = 0, reach = this.reach; d <= reach; d++) {
      const p = (c - d + this.q) % this.q
      if (d >= at(this.span, p)) continue
      const { nodes, span } = this.primariesOf(p)
      this.reach = Math.max(this.reach, span)
      out.push({ p, nodes })
    }
    this.owner[c] = old
    return out
  }

  /** Give entry c to node x, keeping primaries, spans and loads current. */
  setOwner(c: number, x: number): void {
    const old = at(this.owner, c)
    this.entries[old] = at(this.entries, old) - 1
    this.entries[x] = at(this.entries, x) + 1
    this.owner[c] = x
    for (let d = 0, reach = this.reach; d <= reach; d++) {
      const p = (c - d + this.q) % this.q
      if (d >= at(this.span, p)) continue
      for (const y of this.prim[p] as number[]) this.load[y] = at(this.load, y) - 1
      const { nodes, span } = this.primariesOf(p)
      this.prim[p] = nodes
      this.span[p] = span
      this.reach = Math.max(this.reach, span)
      for (const y of nodes) this.load[y] = at(this.load, y) + 1
    }
  }

  /** Give entry c to node x without updating primaries; refreshAll must follow. */
  assignRaw(c: number, x: number): void {
    const old = at(this.owner, c)
    this.entries[old] = at(this.entries, old) - 1
    this.entries[x] = at(this.entries, x) + 1
    this.owner[c] = x
  }

  /** Candidates whose cached score a change at c may have made stale. */
  markAround(c: number, dirty: Uint8Array): void {
    const r = Math.min(this.reach, this.q)
    for (let d = -r; d <= r; d++) dirty[(((c + d) % this.q) + this.q) % this.q] = 1
  }
}

/**
 * With zones, how far past its share of entries a joiner may go to reach
 * its fair load (a zone's entries can carry unequal loads); without zones
 * rule 10 fixes the count.
 */
const ZONED_ENTRY_STRETCH = 1.25

/** Entry targets for the nodes of one zone: floor or ceil of the zone's entries over its nodes, old nodes keeping the ceilings first. */
function entryTargets(zoneEntries: number, oldNodes: number, joiners: number): number[] {
  const total = oldNodes + joiners
  const floor = Math.floor(zoneEntries / total)
  const extra = Math.max(0, (zoneEntries % total) - oldNodes)
  return Array.from({ length: joiners }, (_, i) => floor + (i < extra ? 1 : 0))
}

/** Score of giving an entry to a joiner; lower sorts first. */
interface StealScore {
  /** Replica-partitions the step moves onto old nodes (relative to the pass's start). */
  viol: number
  /** Net replica-partitions the joiner gains. */
  gain: number
  /** Old nodes that drop out of a list, once per list. */
  losers: number[]
}

function scoreSteal(board: Board, base: readonly number[][], isJoiner: Uint8Array, c: number, j: number): StealScore {
  let viol = 0
  let gain = 0
  const losers: number[] = []
  for (const { p, nodes } of board.tryOwner(c, j)) {
    const before = base[p] as number[]
    const cur = board.prim[p] as number[]
    for (const y of nodes) if (!isJoiner[y] && !before.includes(y)) viol++
    gain += (nodes.includes(j) ? 1 : 0) - (cur.includes(j) ? 1 : 0)
    for (const y of cur) if (!isJoiner[y] && !nodes.includes(y)) losers.push(y)
  }
  return { viol, gain, losers }
}

/**
 * Joiners in existing zones steal entries one at a time from old nodes of
 * their zone. Each step takes the entry that moves nothing onto old nodes,
 * then brings the joiner's load closest to its fair share for the entries it
 * has left (without pushing donors below theirs), then takes load from the
 * most loaded nodes, then lies nearest after the last entry taken.
 */
function addPass(board: Board, joiners: readonly number[], isJoiner: Uint8Array): void {
  if (joiners.length === 0) return
  const base = board.prim.map((l) => [...l])
  const byZone = new Map<number, number[]>()
  for (const j of joiners) byZone.set(at(board.zone, j), [...(byZone.get(at(board.zone, j)) ?? []), j])
  const want = new Map<number, number>()
  for (const [z, js] of byZone) {
    const olds = board.ids.map((_, x) => x).filter((x) => !isJoiner[x] && at(board.zone, x) === z && at(board.entries, x) > 0)
    const zoneEntries = olds.reduce((s, x) => s + at(board.entries, x), 0)
    const joinerTargets = entryTargets(zoneEntries, olds.length, js.length)
    for (const [i, j] of js.entries()) want.set(j, joinerTargets[i] as number)
  }
  const cache = new Map(joiners.map((j) => [j, { dirty: new Uint8Array(board.q).fill(1), scores: new Array<StealScore>(board.q) }]))
  // A node's fair load: its zone's load shared by the zone's nodes after the change (a zone's load stays put when entries move inside it).
  const fair = new Float64Array(board.ids.length)
  for (const z of new Set(board.zone)) {
    const members = board.ids.map((_, x) => x).filter((x) => at(board.zone, x) === z && (at(board.entries, x) > 0 || isJoiner[x]))
    const zoneLoad = members.reduce((sum, x) => sum + at(board.load, x), 0)
    for (const x of members) fair[x] = zoneLoad / members.length
  }
  let last = 0
  const zoned = board.zoneCount > 1
  const done = new Set<number>()
  for (let progress = true; progress; ) {
    progress = false
    for (const j of joiners) {
      if (done.has(j) || at(board.entries, j) >= (want.get(j) as number) * (zoned ? ZONED_ENTRY_STRETCH : 1)) continue
      const jc = cache.get(j) as JoinerCache
      const c = bestSteal(board, j, isJoiner, base, jc, last, fair, want.get(j) as number)
      const gain = c < 0 ? 0 : (jc.scores[c] as StealScore).gain
      // With zones a zone's entries may carry unequal loads, so a joiner stops at its fair load, early or late.
      const overshoots = zoned && Math.abs(at(board.load, j) + gain - at(fair, j)) > Math.abs(at(board.load, j) - at(fair, j))
      if (c < 0 || overshoots) {
        done.add(j)
        continue
      }
      board.setOwner(c, j)
      last = c
      for (const k of joiners) board.markAround(c, (cache.get(k) as JoinerCache).dirty)
      progress = true
    }
  }
}

interface JoinerCache {
  readonly dirty: Uint8Array
  readonly scores: StealScore[]
}

function bestSteal(
  board: Board,
  j: number,
  isJoiner: Uint8Array,
  base: readonly number[][],
  cache: JoinerCache,
  last: number,
  fair: Float64Array,
  want: number,
): number {
  let best = -1
  let bestKey: number[] = []
  const z = at(board.zone, j)
  // Without zones the entry count is fixed and every entry carries about n partitions, so a dip below fair is small and
  // weighed like a missed gain; with zones entries can carry unequal loads, and the joiner may stop early instead.
  const underWeight = board.zoneCount > 1 ? board.n : 1
  // The gain per entry that lands the joiner on its fair load with the entries it has left to take.
  const desired = (at(fair, j) - at(board.load, j)) / Math.max(1, want - at(board.entries, j))
  for (let c = 0; c < board.q; c++) {
    const o = at(board.owner, c)
    if (isJoiner[o] || at(board.zone, o) !== z || at(board.entries, o) <= 1) continue
    if (cache.dirty[c]) {
      cache.scores[c] = scoreSteal(board, base, isJoiner, c, j)
      cache.dirty[c] = 0
    }
    const s = cache.scores[c] as StealScore
    const lossLoad = s.losers.reduce((sum, y) => sum + at(board.load, y), 0)
    const under = underflow(board, s.losers, fair)
    // Ties go to the entry nearest after the last one taken: packing the joiner's entries leaves no gaps in which a later entry gains less.
    const key = [s.viol, Math.abs(s.gain - desired) + underWeight * under, -lossLoad, (c - last + board.q) % board.q]
    if (best < 0 || lessThan(key, bestKey)) {
      best = c
      bestKey = key
    }
  }
  return best
}

/** Replica-partitions of a step that would take their node below its fair load: a joiner should take load from nodes above their share. */
function underflow(board: Board, losers: readonly number[], fair: Float64Array): number {
  let total = 0
  const lost = new Map<number, number>()
  for (const y of losers) {
    const after = at(board.load, y) - (lost.get(y) ?? 0) - 1
    lost.set(y, (lost.get(y) ?? 0) + 1)
    if (after < Math.floor(at(fair, y))) total++
  }
  return total
}

function lessThan(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (at(a, i) !== at(b, i)) return at(a, i) < at(b, i)
  return false
}

/**
 * Leavers' entries go one at a time to remaining old nodes of the leaver's
 * zone (any zone when it empties), each step the (entry, receiver) that keeps
 * every surviving replica in place and adds load to the least loaded nodes.
 */
function removePass(board: Board, leavers: readonly number[], receivers: readonly number[], isLeaver: Uint8Array): void {
  if (leavers.length === 0) return
  const base = board.prim.map((l) => [...l])
  const pool = new Map<number, number[]>()
  const capOf = new Map<number, number>()
  for (const z of new Set(leavers.map((l) => at(board.zone, l)))) {
    const same = receivers.filter((x) => at(board.zone, x) === z)
    // A zone's last node leaving (allowNewZone): its entries may go to any zone.
    const group = same.length > 0 ? same : [...receivers]
    for (const l of leavers) if (at(board.zone, l) === z) pool.set(l, group)
    const total = [...group, ...leavers.filter((l) => pool.get(l) === group)].reduce((s, x) => s + at(board.entries, x), 0)
    for (const x of group) capOf.set(x, Math.max(capOf.get(x) ?? 0, Math.ceil(total / group.length)))
  }
  const dirty = new Uint8Array(board.q).fill(1)
  const scores = new Map<number, { viol: number; gainers: number[] }>()
  for (;;) {
    let best: [number, number] | undefined
    let bestKey: number[] = []
    for (let c = 0; c < board.q; c++) {
      const l = at(board.owner, c)
      if (!isLeaver[l]) continue
      for (const x of pool.get(l) as number[]) {
        const k = c * board.ids.length + x
        if (dirty[c] || !scores.has(k)) scores.set(k, scoreGive(board, base, isLeaver, c, x))
        const s = scores.get(k) as { viol: number; gainers: number[] }
        const overCap = at(board.entries, x) >= (capOf.get(x) as number) ? 1 : 0
        const key = [s.viol, overCap, s.gainers.reduce((sum, y) => sum + at(board.load, y), 0), at(board.entries, x)]
        if (!best || lessThan(key, bestKey)) {
          best = [c, x]
          bestKey = key
        }
      }
      dirty[c] = 0
    }
    if (!best) break
    board.setOwner(best[0], best[1])
    board.markAround(best[0], dirty)
  }
  for (let c = 0; c < board.q; c++) assert(!isLeaver[at(board.owner, c)], 'every entry of a leaving node is reassigned')
}

function scoreGive(board: Board, base: readonly number[][], isLeaver: Uint8Array, c: number, x: number): { viol: number; gainers: number[] } {
  let viol = 0
  const gainers: number[] = []
  for (const { p, nodes } of board.tryOwner(c, x)) {
    const cur = board.prim[p] as number[]
    for (const y of base[p] as number[]) if (!isLeaver[y] && !nodes.includes(y)) viol++
    for (const y of nodes) if (!cur.includes(y)) gainers.push(y)
  }
  return { viol, gainers }
}

/**
 * A joiner in a zone no old node has: every list reorders anyway, so its
 * entries are simply spread evenly round the ring, each taken from the
 * nearby node holding the most entries.
 */
function spreadPass(board: Board, joiners: readonly number[], isJoiner: Uint8Array): void {
  const nodes = board.ids.filter((_, x) => at(board.entries, x) > 0 || isJoiner[x]).length
  const floor = Math.floor(board.q / nodes)
  for (const j of joiners) {
    const window = Math.max(1, Math.floor(board.q / floor))
    for (let k = 0; k < floor; k++) {
      let best = -1
      for (let d = 0; d < window; d++) {
        const c = (k * window + d) % board.q
        const o = at(board.owner, c)
        if (isJoiner[o] || at(board.entries, o) <= floor) continue
        if (best < 0 || at(board.entries, o) > at(board.entries, at(board.owner, best))) best = c
      }
      if (best >= 0) board.assignRaw(best, j)
    }
  }
  // Until the new zone owns entries every walk runs round the whole ring, so update once at the end.
  board.refreshAll()
}

/**
 * The new assignment for `nextNodes`: replacements (a leaver and a joiner of
 * the same zone, paired in list order) swap entries exactly, so replica sets
 * change only by substitution; remaining leavers' entries go to the nodes
 * that stay without displacing any surviving replica; remaining joiners take
 * ⌊Q/N′⌋ or ⌈Q/N′⌉ entries (of their zone's share) from old nodes of their
 * zone, moving no replica-partition onto an old node when that is possible.
 * Throws InvalidInputError when the set of zones changes without
 * `allowNewZone`.
 */
export function claim(current: Layout, nextNodes: readonly NodeDef[], n: number, options: ClaimOptions = {}): string[] {
  assert(Number.isInteger(n) && n >= 1, `replica count ${n} must be a positive integer`)
  assert(nextNodes.length > 0, 'a cluster needs at least one node')
  assert(new Set(nextNodes.map((x) => x.id)).size === nextNodes.length, 'node ids must be distinct')
  const q = current.assignment.length
  assert(q >= nextNodes.length, `${q} partitions cannot give each of ${nextNodes.length} nodes an entry`)
  const oldIds = new Set(current.assignment)
  for (const id of oldIds)
    assert(
      current.nodes.some((x) => x.id === id),
      `assignment names node ${id}, which is not among the nodes`,
    )
  const zonesBefore = new Set(current.nodes.filter((x) => oldIds.has(x.id)).map(zoneOf))
  const zonesAfter = new Set(nextNodes.map(zoneOf))
  const zoneChange = zonesBefore.size !== zonesAfter.size || [...zonesAfter].some((z) => !zonesBefore.has(z))
  if (zoneChange && !options.allowNewZone) {
    const added = [...zonesAfter].filter((z) => !zonesBefore.has(z))
    const gone = [...zonesBefore].filter((z) => !zonesAfter.has(z))
    throw new InvalidInputError(
      `the change alters the set of zones (new: ${added.join(', ') || 'none'}; emptied: ${gone.join(', ') || 'none'}), which reorders most preference lists; pass allowNewZone to do it anyway`,
    )
  }
  const all = [...nextNodes, ...current.nodes.filter((x) => !nextNodes.some((y) => y.id === x.id))]
  const zoneIndex = new Map([...new Set(all.map(zoneOf))].map((z, i) => [z, i]))
  const ids = all.map((x) => x.id)
  const board = new Board(
    ids,
    all.map((x) => zoneIndex.get(zoneOf(x)) as number),
    zonesAfter.size,
    current.assignment,
    n,
  )
  const stays = new Set(nextNodes.map((x) => x.id))
  const isLeaver = Uint8Array.from(ids, (id) => (oldIds.has(id) && !stays.has(id) ? 1 : 0))
  const isJoiner = Uint8Array.from(ids, (id) => (oldIds.has(id) ? 0 : 1))
  const { leavers, joiners } = substitute(board, isLeaver, isJoiner)
  const receivers = ids.map((_, x) => x).filter((x) => !isLeaver[x] && !isJoiner[x])
  removePass(board, leavers, receivers, isLeaver)
  const zonesHeld = new Set(receivers.map((x) => at(board.zone, x)))
  spreadPass(
    board,
    joiners.filter((j) => !zonesHeld.has(at(board.zone, j))),
    isJoiner,
  )
  addPass(
    board,
    joiners.filter((j) => zonesHeld.has(at(board.zone, j))),
    isJoiner,
  )
  const assignment = Array.from(board.owner, (x) => ids[x] as string)
  checkAgainstRing(board, { assignment, nodes: nextNodes }, n)
  return assignment
}

/** Pair each leaver with a joiner of its zone and give the joiner exactly its entries; returns the unpaired ones. */
function substitute(board: Board, isLeaver: Uint8Array, isJoiner: Uint8Array): { leavers: number[]; joiners: number[] } {
  const leavers = board.ids.map((_, x) => x).filter((x) => isLeaver[x])
  const joiners = board.ids.map((_, x) => x).filter((x) => isJoiner[x])
  const unpaired: number[] = []
  for (const j of joiners) {
    const i = leavers.findIndex((l) => at(board.zone, l) === at(board.zone, j))
    if (i < 0) {
      unpaired.push(j)
      continue
    }
    const [l] = leavers.splice(i, 1) as [number]
    for (let c = 0; c < board.q; c++) if (at(board.owner, c) === l) board.owner[c] = j
    isJoiner[j] = 0
  }
  board.entries.fill(0)
  for (const o of board.owner) board.entries[o] = at(board.entries, o) + 1
  board.refreshAll()
  return { leavers, joiners: unpaired }
}

/** The claim's own walk must agree with the routing's; a difference is a bug here, not bad input. */
function checkAgainstRing(board: Board, after: Layout, n: number): void {
  const ring = ringOf(after)
  for (let p = 0; p < board.q; p++) {
    const mine = (board.prim[p] as number[]).map((x) => board.ids[x])
    assert(mine.join() === ring.primaries(p, n).join(), `claim and Ring disagree on the primaries of partition ${p}`)
  }
}

function ringOf(placement: Layout): Ring {
  return new Ring({ version: 1, partitions: placement.assignment.length, nodes: placement.nodes, assignment: placement.assignment, stores: [] })
}

/**
 * Fair load of each node after a change. When the set of zones stays the
 * same and n ≤ zones, a partition's replicas are the first node of each of
 * the first n zones met walking the ring, so moving entries inside a zone
 * keeps every zone's load: a zone's load before is shared by its nodes
 * after. Otherwise n·Q is shared evenly, a zone holding at most Q when
 * n ≤ zones (at most ⌈n/zones⌉·Q otherwise).
 */
function idealLoads(before: Layout, after: Layout, loadBefore: Record<string, number>, n: number): Record<string, number> {
  const q = after.assignment.length
  const size = new Map<string, number>()
  for (const x of after.nodes) size.set(zoneOf(x), (size.get(zoneOf(x)) ?? 0) + 1)
  const zonesBefore = new Set(before.nodes.map(zoneOf))
  const same = zonesBefore.size === size.size && [...size.keys()].every((z) => zonesBefore.has(z))
  if (same && n <= size.size) {
    const zoneLoad = new Map<string, number>()
    for (const x of before.nodes) zoneLoad.set(zoneOf(x), (zoneLoad.get(zoneOf(x)) ?? 0) + (loadBefore[x.id] ?? 0))
    return Object.fromEntries(after.nodes.map((x) => [x.id, (zoneLoad.get(zoneOf(x)) ?? 0) / (size.get(zoneOf(x)) as number)]))
  }
  const zoneCap = q * Math.ceil(n / size.size)
  const capOf = (x: NodeDef): number => Math.min(q, zoneCap / (size.get(zoneOf(x)) as number))
  const total = Math.min(n, after.nodes.length) * q
  // Water-filling: the level s with sum(min(s, cap)) = total, by bisection.
  let lo = 0
  let hi = q
  for (let i = 0; i < 60; i++) {
    const s = (lo + hi) / 2
    if (after.nodes.reduce((sum, x) => sum + Math.min(s, capOf(x)), 0) < total) lo = s
    else hi = s
  }
  return Object.fromEntries(after.nodes.map((x) => [x.id, Math.min(hi, capOf(x))]))
}

/** Measure what changing `before` into `after` moves, for replica count n. */
export function movement(before: Layout, after: Layout, n: number): Movement {
  assert(before.assignment.length === after.assignment.length, 'before and after must have the same partition count')
  const q = before.assignment.length
  const rb = ringOf(before)
  const ra = ringOf(after)
  const zone = new Map([...before.nodes, ...after.nodes].map((x) => [x.id, zoneOf(x)]))
  const oldIds = new Set(before.nodes.map((x) => x.id))
  const leavers = new Set([...oldIds].filter((id) => !after.nodes.some((x) => x.id === id)))
  const loadBefore = Object.fromEntries(before.nodes.map((x) => [x.id, 0]))
  const loadAfter = Object.fromEntries(after.nodes.map((x) => [x.id, 0]))
  let entriesMoved = 0
  let moved = 0
  let onto = 0
  let unforced = 0
  let across = 0
  for (let p = 0; p < q; p++) {
    if (before.assignment[p] !== after.assignment[p]) entriesMoved++
    const b = rb.primaries(p, n)
    const a = ra.primaries(p, n)
    for (const id of b) loadBefore[id] = (loadBefore[id] ?? 0) + 1
    for (const id of a) loadAfter[id] = (loadAfter[id] ?? 0) + 1
    const arrived = a.filter((id) => !b.includes(id))
    const leftZones = b.filter((id) => !a.includes(id)).map((id) => zone.get(id))
    moved += arrived.length
    const ontoOld = arrived.filter((id) => oldIds.has(id)).length
    onto += ontoOld
    unforced += Math.max(0, ontoOld - b.filter((id) => leavers.has(id)).length)
    for (const id of arrived) {
      const i = leftZones.indexOf(zone.get(id))
      if (i < 0) across++
      else leftZones.splice(i, 1)
    }
  }
  const idealLoad = idealLoads(before, after, loadBefore, n)
  const joiners = after.nodes.filter((x) => !oldIds.has(x.id)).map((x) => x.id)
  return {
    entriesMoved,
    replicaPartitionsMoved: moved,
    movedOntoOldNodes: onto,
    movedOntoOldNodesUnforced: unforced,
    movedAcrossZones: across,
    loadBefore,
    loadAfter,
    idealLoad,
    joinerIdeal: joiners.reduce((s, id) => s + (idealLoad[id] ?? 0), 0),
    joinerLoad: joiners.reduce((s, id) => s + (loadAfter[id] ?? 0), 0),
  }
}
