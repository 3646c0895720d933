import { fileURLToPath } from 'node:url'
import { defaultServerConditions } from 'vite'
import { defineConfig } from 'vitest/config'

/**
 * The export condition every workspace package maps to its `src/index.ts`. Resolving through it makes a test
 * run the source beside it, not whatever `tsc -b` last wrote to `dist/`. The node processes that tests start
 * still run `dist/`, which `npm test` builds first; the fault suite's tsx client workers and the tsx scripts
 * (`npm run sim`, `fuzz`, `test:faults`) pass `--conditions=kvorum-source` and run the source too.
 */
const SOURCE_CONDITION = 'kvorum-source'

/**
 * Vite replaces its default conditions when given a list, so the defaults are appended to ours. Vitest resolves
 * test imports as server-side (SSR) code, so it is `ssr.resolve.conditions` that counts; the top-level
 * `resolve.conditions` alone leaves vitest on `dist/` (checked by planting an export in a package's source).
 */
const conditions = [SOURCE_CONDITION, ...defaultServerConditions]

export default defineConfig({
  ssr: { resolve: { conditions } },
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Cluster tests start real node processes; two files at a time fit a 2-core machine.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
