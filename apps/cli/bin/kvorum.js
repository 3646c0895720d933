#!/usr/bin/env node
// npm links a package's bins while it installs, before the repository's `prepare` script builds dist/, and skips
// a bin whose file is missing. So the bin is this file, which is always there, and it runs the built dist/main.js.
import { existsSync } from 'node:fs'

const main = new URL('../dist/main.js', import.meta.url)
if (!existsSync(main)) {
  console.error('kvorum: this checkout is not built yet: run `npm run build` at the repository root')
  process.exit(1)
}
await import(main.href)
