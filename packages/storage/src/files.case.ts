import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { type EngineOptions, StorageEngine } from './engine.js'
import { singleNodeCluster } from './engine.case.js'

/**
 * For a test file: fresh database paths in a temporary directory (removed
 * after all tests) and an opener of engines (closed after each test, with a
 * single-node cluster installed when they have none).
 */
export function fileEngines(prefix: string) {
  let dir = ''
  let files = 0
  const opened: StorageEngine[] = []
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `kvorum-${prefix}-`))
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  afterEach(() => {
    for (const e of opened.splice(0)) e.close()
  })
  return {
    /** A path for a new database file. */
    path: () => join(dir, `${prefix}-${files++}.db`),
    async open(path: string, options: Partial<EngineOptions> = {}): Promise<StorageEngine> {
      const e = new StorageEngine({ path, nodeId: 'n1', ...options })
      opened.push(e)
      if (!(await e.getCluster())) await e.putCluster(singleNodeCluster())
      return e
    },
    /** Stop closing `e` after the test (it was closed, or its database was pulled from under it). */
    forget(e: StorageEngine): void {
      opened.splice(opened.indexOf(e), 1)
    },
  }
}
