import { MissingPackageError } from '@kvorum/core'

/**
 * A file of the kvorum-node package, as `resolveFile` finds it. kvorum-node is an optional peer of this CLI, so
 * the ops commands install without building better-sqlite3; a command that starts nodes without it stops here
 * with one line that says what to install.
 */
export function nodePackageFile(resolveFile: () => string): string {
  try {
    return resolveFile()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e
    throw new MissingPackageError('kvorum-node', 'kvorum dev and kvorum bench start kvorum-node processes')
  }
}
