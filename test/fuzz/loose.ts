import { type Version, type VersionVector, Writer, utf8 } from '@kvorum/core'

/**
 * The node protocol's frames written from loose structures that may break
 * every rule the decoders enforce (duplicate actors, zero counters, bad
 * UTF-8, sizes past the limits). With valid contents they are byte for byte
 * what the @kvorum/core encoders write; fuzz.test.ts checks that.
 */

export type LooseClock = [actor: Uint8Array, counter: number][]

export interface LooseVersion {
  actor: Uint8Array
  counter: number
  timestamp: number
  context: LooseClock
  /** 0: a value follows; 1: a tombstone; anything else is malformed. */
  flag: number
  value: Uint8Array
}

export interface LooseItem {
  key: Uint8Array
  timestamp: number
  context: LooseClock
  flag: number
  value: Uint8Array
}

export interface LooseKeySet {
  /** Only in hint frames. */
  store?: Uint8Array
  key: Uint8Array
  siblings: LooseVersion[]
}

export function looseClock(vv: VersionVector): LooseClock {
  return Object.keys(vv)
    .sort()
    .map((a) => [utf8(a), vv[a] as number])
}

export function looseVersion(v: Version): LooseVersion {
  return {
    actor: utf8(v.dot.actor),
    counter: v.dot.counter,
    timestamp: v.timestamp,
    context: looseClock(v.context),
    flag: v.value === null ? 1 : 0,
    value: v.value ?? new Uint8Array(0),
  }
}

function clock(w: Writer, c: LooseClock): void {
  w.uint(c.length)
  for (const [actor, n] of c) w.bytes(actor).uint(n)
}

function valueField(w: Writer, flag: number, value: Uint8Array): void {
  w.byte(flag)
  if (flag !== 1) w.bytes(value)
}

function version(w: Writer, v: LooseVersion): void {
  w.bytes(v.actor).uint(v.counter).uint(v.timestamp)
  clock(w, v.context)
  valueField(w, v.flag, v.value)
}

export function writeCoordinate(items: readonly LooseItem[]): Uint8Array {
  const w = new Writer().uint(items.length)
  for (const it of items) {
    w.bytes(it.key).uint(it.timestamp)
    clock(w, it.context)
    valueField(w, it.flag, it.value)
  }
  return w.finish()
}

/** Key sets (merge, reap) or, when items carry a store, hints. */
export function writeKeySets(items: readonly LooseKeySet[]): Uint8Array {
  const w = new Writer().uint(items.length)
  for (const it of items) {
    if (it.store) w.bytes(it.store)
    w.bytes(it.key).uint(it.siblings.length)
    for (const v of it.siblings) version(w, v)
  }
  return w.finish()
}
