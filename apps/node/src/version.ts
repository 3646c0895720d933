import { readFileSync } from 'node:fs'

/** This build's version, from the package's own package.json (beside both src/ and dist/). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
