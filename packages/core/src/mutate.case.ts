import fc from 'fast-check'

/** One edit to a frame: overwrite, insert or delete a byte (for fuzzing decoders). */
export type Mutation = { readonly op: 'set' | 'insert' | 'delete'; readonly at: number; readonly byte: number }

/** One to four random edits. */
export const mutations = fc.array(
  fc.record({ op: fc.constantFrom('set' as const, 'insert' as const, 'delete' as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  { minLength: 1, maxLength: 4 },
)

/** The frame with the edits applied. */
export function mutate(frame: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  const bytes = [...frame]
  for (const m of ms) {
    const at = m.at % (bytes.length + 1)
    if (m.op === 'insert') bytes.splice(at, 0, m.byte)
    else if (m.op === 'delete') bytes.splice(at, 1)
    else if (at < bytes.length) bytes[at] = m.byte
  }
  return Uint8Array.from(bytes)
}
