import { describe, expectTypeOf, it } from 'vitest'
import type { Codec, ConnectOptions, GetResult, HttpTransportOptions, JsonValue, KeyResult, Kvorum, Store, StoreOptions, WriteOptions } from '@kvorum/client'

/*
 * Type-level checks of the SDK's public types, never run: `npx tsc -p
 * test/tsconfig.json` (part of `npm test`) compiles this file under `strict`
 * and `exactOptionalPropertyTypes`, so a wrong type fails the build, and each
 * `@ts-expect-error` fails it if the line it guards starts to compile. (The
 * `.test-d.ts` name keeps vitest from running it: `kv` exists only as a type.)
 */

declare const kv: Kvorum
declare const maybe: string | undefined
declare const maybeNumber: number | undefined

describe('store handles: the codec decides the value type', () => {
  it('bytes by default, utf8 strings, json values, and a custom codec its own type', () => {
    expectTypeOf(kv.store('default')).toEqualTypeOf<Store<Uint8Array>>()
    expectTypeOf(kv.store('default', { codec: 'bytes' })).toEqualTypeOf<Store<Uint8Array>>()
    expectTypeOf(kv.store('default', { codec: 'utf8' })).toEqualTypeOf<Store<string>>()
    expectTypeOf(kv.store('default', { codec: 'json' })).toEqualTypeOf<Store<JsonValue>>()
    const dates: Codec<Date> = { encode: (d) => new TextEncoder().encode(d.toISOString()), decode: (b) => new Date(new TextDecoder().decode(b)) }
    expectTypeOf(kv.store('default', { codec: dates })).toEqualTypeOf<Store<Date>>()
  })

  it('json stores take the type the caller names, and a merge function infers it', () => {
    interface Cart {
      readonly items: string[]
    }
    expectTypeOf(kv.store<Cart>('default', { codec: 'json' })).toEqualTypeOf<Store<Cart>>()
    expectTypeOf(kv.store('default', { codec: 'json', merge: (vs: Cart[]) => vs[0] as Cart })).toEqualTypeOf<Store<Cart>>()
    expectTypeOf(kv.store('default', { codec: 'utf8' }).get('k')).resolves.toEqualTypeOf<GetResult<string>>()
  })

  it('a codec name chosen at run time gives values of unknown type', () => {
    const codec = (maybe === 'json' ? 'json' : 'utf8') as 'json' | 'utf8' | 'bytes'
    expectTypeOf(kv.store('default', { codec })).toEqualTypeOf<Store<unknown>>()
  })

  it('a codec that does not fit the named type does not compile', () => {
    // This was Store<Uint8Array> before: values came back as parsed JSON all the same.
    expectTypeOf(kv.store('default', { codec: 'json' })).not.toEqualTypeOf<Store<Uint8Array>>()
    // @ts-expect-error the utf8 codec gives strings, not numbers
    kv.store<number>('default', { codec: 'utf8' })
    // @ts-expect-error without a codec values are bytes, not strings
    kv.store<string>('default')
    // @ts-expect-error a utf8 store takes strings
    kv.store('default', { codec: 'utf8' }).put('k', new Uint8Array())
  })
})

describe('optional options accept undefined (exactOptionalPropertyTypes)', () => {
  it('connect, store, call and transport options', () => {
    // The README's line: an unset environment variable is undefined.
    expectTypeOf({ seeds: ['http://127.0.0.1:7070'], token: process.env.KVORUM_TOKEN }).toExtend<ConnectOptions>()
    expectTypeOf({ seeds: ['x'], timeoutMs: maybeNumber, retry: undefined, batch: { maxBatchItems: maybeNumber } }).toExtend<ConnectOptions>()
    expectTypeOf({ token: maybe, connections: maybeNumber }).toExtend<HttpTransportOptions>()
    expectTypeOf({ codec: undefined, r: maybeNumber, merge: undefined }).toExtend<StoreOptions<string>>()
    expectTypeOf({ context: maybe, timeoutMs: maybeNumber, signal: undefined }).toExtend<WriteOptions>()
  })
})

describe('getMany answers per key', () => {
  it('a Map keyed by the keys as given, each with its own result', () => {
    const s = kv.store('default', { codec: 'utf8' })
    const keys: string[] = ['a', 'b']
    expectTypeOf(s.getMany(keys)).resolves.toEqualTypeOf<Map<string, KeyResult<GetResult<string>>>>()
    const bytes: Uint8Array[] = [new Uint8Array([1])]
    expectTypeOf(s.getMany(bytes)).resolves.toEqualTypeOf<Map<Uint8Array, KeyResult<GetResult<string>>>>()
    // Literal keys stay literal, so `.get('c')` on the answer of getMany(['a', 'b']) does not compile.
    expectTypeOf(s.getMany(['a', 'b'])).resolves.toEqualTypeOf<Map<'a' | 'b', KeyResult<GetResult<string>>>>()
    expectTypeOf(s.putMany([{ key: 'a', value: 'x' }])).resolves.toEqualTypeOf<Map<'a', KeyResult<{ context: string }>>>()
    expectTypeOf(s.deleteMany(['a', { key: 'b', context: 'ctx' }])).resolves.toEqualTypeOf<Map<'a' | 'b', KeyResult<{ context: string }>>>()
    // @ts-expect-error a utf8 store's putMany takes strings
    s.putMany([{ key: 'a', value: 1 }])
  })
})

describe('admin calls take undefined for what they leave out', () => {
  it('a membership change and a rebalance built from optional flags compile', () => {
    const flags: { remove?: string[] | undefined; steps?: number | undefined } = {}
    kv.planChange({ remove: flags.remove, entriesPerStep: flags.steps, allowNewZone: undefined })
    void kv.rebalance(undefined, { drainMs: maybeNumber, cleanupGraceMs: maybeNumber })
    void kv.alterStore('default', { w: maybeNumber })
  })
})
