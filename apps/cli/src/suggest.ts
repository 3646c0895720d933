/** Longest word the edit distance is computed for: a longer word is no misspelling of a command or flag. */
const MAX_WORD_CHARS = 64

/** Edit distance between two short words: inserts, deletes, substitutions and swaps of neighbours count 1 each. */
export function editDistance(a: string, b: string): number {
  // Optimal string alignment: Levenshtein plus adjacent transpositions, so "gte" is one edit from "get".
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number) => d[i]?.[j] as number
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      ;(d[i] as number[])[j] = best
    }
  }
  return at(a.length, b.length)
}

/**
 * The known word the user most likely meant: the nearest within a third of
 * its length (at least 1, at most 3 edits), else the one word it is a
 * prefix of (3 characters or more). Undefined when nothing is close.
 */
export function closest(word: string, known: readonly string[]): string | undefined {
  if (word.length === 0 || word.length > MAX_WORD_CHARS) return undefined
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const d = editDistance(word, candidate)
    const allowed = Math.min(3, Math.max(1, Math.floor(candidate.length / 3)))
    if (d <= allowed && d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  if (best !== undefined) return best
  const extending = word.length >= 3 ? known.filter((k) => k.startsWith(word)) : []
  return extending.length === 1 ? extending[0] : undefined
}

/** ` (did you mean X?)`, or nothing. */
export function didYouMean(word: string, known: readonly string[], show: (k: string) => string = (k) => k): string {
  const near = closest(word, known)
  return near === undefined ? '' : ` (did you mean ${show(near)}?)`
}
