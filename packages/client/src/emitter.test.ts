import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { describe, expect, it } from 'vitest'
import { TimeoutError } from '@kvorum/core'
import { type BackgroundErrorEvent, CHANNELS, MAX_LISTENERS_PER_EVENT, type NodeDownEvent } from '@kvorum/client'
import { ClientEvents } from './emitter.js'

const client = { name: 'a client' }
const down: NodeDownEvent = { node: 'n1', url: 'http://n1', error: 'refused', code: 'KV_NODE_UNAVAILABLE' }

describe('the client event emitter', () => {
  it('calls listeners in the order they were added, and off removes one', () => {
    const events = new ClientEvents(client)
    const seen: string[] = []
    const a = (e: NodeDownEvent) => seen.push(`a:${e.node}`)
    const b = (e: NodeDownEvent) => seen.push(`b:${e.node}`)
    events.on('nodeDown', a)
    events.on('nodeDown', b)
    events.emit('nodeDown', () => down)
    events.off('nodeDown', a)
    events.emit('nodeDown', () => ({ ...down, node: 'n2' }))
    expect(seen).toEqual(['a:n1', 'b:n1', 'b:n2'])
  })

  it('builds no payload and keeps nothing for an event nobody listens to', () => {
    const events = new ClientEvents(client)
    let built = 0
    events.emit('nodeDown', () => {
      built++
      return down
    })
    const late: NodeDownEvent[] = []
    events.on('nodeDown', (e) => late.push(e))
    expect(built).toBe(0)
    // A listener added later gets what happens from then on, not a backlog.
    expect(late).toEqual([])
  })

  it('publishes each event on its diagnostics channel with the client, and the node channel says up or down', () => {
    const events = new ClientEvents(client)
    const seen: unknown[] = []
    const fn = (m: unknown) => seen.push(m)
    subscribe(CHANNELS.node, fn)
    try {
      events.emit('nodeDown', () => down)
      events.emit('nodeUp', () => ({ node: 'n1', url: 'http://n1', downMs: 12 }))
    } finally {
      unsubscribe(CHANNELS.node, fn)
    }
    expect(seen).toEqual([
      { client, up: false, ...down },
      { client, up: true, node: 'n1', url: 'http://n1', downMs: 12 },
    ])
  })

  it('a listener that throws reaches neither the emitter nor the other listeners; it is counted and told as a backgroundError', () => {
    const events = new ClientEvents(client)
    const bug = new TypeError('listener bug')
    const after: string[] = []
    const errors: BackgroundErrorEvent[] = []
    events.on('nodeDown', () => {
      throw bug
    })
    events.on('nodeDown', (e) => after.push(e.node))
    events.on('backgroundError', (e) => errors.push(e))
    expect(() => events.emit('nodeDown', () => down)).not.toThrow()
    expect(after).toEqual(['n1'])
    expect(events.listenerErrors).toBe(1)
    expect(errors).toEqual([{ task: 'listener:nodeDown', error: bug, expected: false }])
  })

  it('an async listener that rejects is counted too', async () => {
    const events = new ClientEvents(client)
    const errors: BackgroundErrorEvent[] = []
    events.on('backgroundError', (e) => errors.push(e))
    events.on('hint', async () => {
      throw new Error('async listener bug')
    })
    events.emit('hint', () => ({ store: 's', key: new Uint8Array([1]), target: 'n2', holder: 'n3' }))
    await new Promise((r) => setImmediate(r))
    expect(events.listenerErrors).toBe(1)
    expect(errors[0]).toMatchObject({ task: 'listener:hint', expected: false })
  })

  it('a backgroundError listener that throws is only counted: no loop', () => {
    const events = new ClientEvents(client)
    let calls = 0
    events.on('backgroundError', () => {
      calls++
      throw new Error('broken error handler')
    })
    events.emit('backgroundError', () => ({ task: 'hint', error: new TimeoutError('hint', 10), code: 'KV_TIMEOUT', expected: true }))
    expect(calls).toBe(1)
    expect(events.listenerErrors).toBe(1)
  })

  it('refuses an unknown event, a listener that is not a function, and a listener past the bound, with KV_INVALID_INPUT', () => {
    const events = new ClientEvents(client)
    expect(() => events.on('nodeGone' as 'nodeDown', () => {})).toThrow(expect.objectContaining({ code: 'KV_INVALID_INPUT' }))
    expect(() => events.on('nodeDown', 'log' as unknown as () => void)).toThrow(/must be a function, got string/)
    for (let i = 0; i < MAX_LISTENERS_PER_EVENT; i++) events.on('nodeDown', () => {})
    expect(() => events.on('nodeDown', () => {})).toThrow(expect.objectContaining({ code: 'KV_INVALID_INPUT' }))
    expect(events.count('nodeDown')).toBe(MAX_LISTENERS_PER_EVENT)
  })
})
