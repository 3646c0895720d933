#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { KvorumError } from '@kvorum/core'
import { UsageError } from './args.js'
import { type Command, type Group, COMMANDS, KEEP_RUNNING, groupHelp, isGroup } from './commands.js'
import { topHelp, usageOf } from './help.js'
import { didYouMean } from './suggest.js'

/** Exit code of a usage mistake (clig.dev, and what getopt-style tools use). */
const EXIT_USAGE = 2
/** Exit code of a failed operation. */
const EXIT_FAILED = 1

const TOP_USAGE = 'kvorum <command> [arguments] [flags]'

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** A usage mistake: what was wrong, the command's usage line(s), and where its help is. Exit 2. */
function usageMistake(path: readonly string[], message: string, usage: string): number {
  const who = ['kvorum', ...path].join(' ')
  const lines = usage.split('\n')
  console.error(`${who}: ${message}\nusage: ${lines.join('\n       ')}\nrun '${who} --help' for more`)
  return EXIT_USAGE
}

/** Flags before a `--` (after it everything is an argument). */
function flagsOf(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--')
  return end < 0 ? argv : argv.slice(0, end)
}

interface Resolved {
  readonly path: string[]
  readonly node: Command | Group
  readonly rest: string[]
}

/** Walk the command names at the front of argv: `cluster plan --add ...` → cluster › plan. */
function resolve(argv: readonly string[]): Resolved | { path: string[]; error: string; usage: string } {
  const [name = '', ...rest] = argv
  const top = COMMANDS[name]
  if (!top) {
    const what = name.startsWith('-') ? 'unknown flag' : 'unknown command'
    const known = name.startsWith('-') ? ['--help', '--version'] : Object.keys(COMMANDS)
    return { path: [], error: `${what} ${name}${didYouMean(name, known)}`, usage: TOP_USAGE }
  }
  if (!isGroup(top)) return { path: [name], node: top, rest }
  const [sub, ...subRest] = rest
  const names = Object.keys(top.subcommands)
  const found = sub === undefined ? undefined : top.subcommands[sub]
  if (found) return { path: [name, sub as string], node: found, rest: subRest }
  const wantsHelp = sub === undefined || sub === '--help' || sub === '-h'
  if (wantsHelp) return { path: [name], node: top, rest }
  const error = sub.startsWith('-') ? `${sub} goes after the subcommand` : `unknown subcommand ${sub}${didYouMean(sub, names)}`
  return { path: [name], error, usage: usageOf(groupHelp(name, top)) }
}

async function helpOf(path: readonly string[], node: Command | Group): Promise<string> {
  return isGroup(node) ? groupHelp(path[0] as string, node) : (await node.load()).help
}

function listed(): { name: string; summary: string }[] {
  return Object.entries(COMMANDS).map(([name, c]) => ({ name, summary: c.summary }))
}

async function main(argv: string[]): Promise<number> {
  const first = argv[0]
  if (first === undefined || first === '--help' || first === '-h') {
    console.log(topHelp(listed()))
    return 0
  }
  if (first === '--version') {
    console.log(`kvorum ${version()}`)
    return 0
  }
  const asked = first === 'help' ? argv.slice(1) : argv
  if (first === 'help' && asked.length === 0) {
    console.log(topHelp(listed()))
    return 0
  }
  const r = resolve(asked)
  if ('error' in r) return usageMistake(r.path, r.error, r.usage)
  if (first === 'help' || flagsOf(r.rest).some((a) => a === '--help' || a === '-h')) {
    console.log(await helpOf(r.path, r.node))
    return 0
  }
  if (isGroup(r.node))
    return usageMistake(r.path, `missing subcommand (${Object.keys(r.node.subcommands).join('|')})`, usageOf(groupHelp(r.path[0] as string, r.node)))
  const loaded = await r.node.load()
  try {
    return await loaded.run(r.rest)
  } catch (e) {
    if (e instanceof UsageError) return usageMistake(r.path, e.message, usageOf(loaded.help))
    throw e
  }
}

/** KVORUM_DEBUG set (to anything but 0): print stacks. */
function debugging(): boolean {
  const v = process.env.KVORUM_DEBUG
  return v !== undefined && v !== '' && v !== '0'
}

/** One line on stderr for an error that ends the command; the stack only under KVORUM_DEBUG. */
function failure(e: unknown): number {
  const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ')
  if (e instanceof KvorumError) console.error(`kvorum: ${e.code}: ${oneLine(e.message)}`)
  else {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    console.error(`kvorum: ${oneLine(what)}${debugging() ? '' : ' (run with KVORUM_DEBUG=1 for the stack)'}`)
  }
  if (debugging() && e instanceof Error) console.error(e.stack)
  return EXIT_FAILED
}

/** Exit once what was written to stdout has gone out (a pipe may still hold part of a large value). */
function exit(code: number): void {
  if (code === KEEP_RUNNING) return
  process.stdout.write('', () => process.exit(code))
}

// An error thrown outside the command's own promise (a stream's 'error' event, a stray timer) ends the run the same way.
process.on('uncaughtException', (e) => process.exit(failure(e)))
process.on('unhandledRejection', (e) => process.exit(failure(e)))
main(process.argv.slice(2)).then(exit, (e) => exit(failure(e)))
