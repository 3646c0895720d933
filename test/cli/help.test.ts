import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CLI_MAIN, type CliRun, runCli } from './run-cli.js'

// Help, version, usage mistakes and error lines of the built `kvorum` binary; no cluster needed.

/** Names listed under a "Commands:" or "Subcommands:" heading of a help text. */
function listedUnder(help: string, heading: string): string[] {
  const lines = help.split('\n')
  const start = lines.indexOf(heading)
  const names: string[] = []
  for (const line of lines.slice(start + 1)) {
    const m = /^ {2}([a-z-]+) {2,}/.exec(line)
    if (!m) break
    names.push(m[1] as string)
  }
  return names
}

function usageMistake(run: CliRun, who: string): void {
  expect(run.code).toBe(2)
  expect(run.stdout).toBe('')
  const lines = run.stderr.trimEnd().split('\n')
  expect(lines[0]).toMatch(new RegExp(`^${who}: `))
  expect(lines.some((l) => /^usage: kvorum/.test(l))).toBe(true)
  expect(lines.at(-1)).toBe(`run '${who} --help' for more`)
  // The usage line, not the whole help.
  expect(lines.length).toBeLessThanOrEqual(5)
}

describe('help and version', () => {
  it('--help, -h and `help <command>` print only that command’s help, for every command and subcommand', async () => {
    const top = await runCli(['--help'])
    expect(top.code).toBe(0)
    const commands = listedUnder(top.stdout, 'Commands:')
    expect(commands).toEqual(expect.arrayContaining(['dev', 'cluster', 'get', 'put', 'delete', 'status', 'repair', 'bench']))
    const cluster = await runCli(['cluster', '--help'])
    const subcommands = listedUnder(cluster.stdout, 'Subcommands:')
    expect(subcommands).toEqual(expect.arrayContaining(['init', 'plan', 'rebalance', 'abort', 'status']))
    const paths = [...commands.map((c) => [c]), ...subcommands.map((s) => ['cluster', s])]
    const helps = new Map<string, string>()
    for (const path of paths) {
      const who = `kvorum ${path.join(' ')}`
      const [long, short, named] = await Promise.all([runCli([...path, '--help']), runCli([...path, '-h']), runCli(['help', ...path])])
      expect(long.code, who).toBe(0)
      expect(long.stderr, who).toBe('')
      expect(long.stdout.startsWith(`${who} `), `${who} --help starts with its usage line:\n${long.stdout}`).toBe(true)
      expect(short.stdout, who).toBe(long.stdout)
      expect(named.stdout, who).toBe(long.stdout)
      expect([short.code, named.code], who).toEqual([0, 0])
      helps.set(path.join(' '), long.stdout)
    }
    // Each help is that command's alone: no other command's usage line in it.
    for (const [name, text] of helps) {
      for (const other of helps.keys()) {
        if (other === name || other.startsWith(`${name} `) || name.startsWith(`${other} `)) continue
        expect(
          text.split('\n').some((l) => l.startsWith(`kvorum ${other} `)),
          `help of ${name} shows ${other}`,
        ).toBe(false)
      }
    }
  }, 120_000)

  it('the help documents the environment variables and the exit codes', async () => {
    const top = (await runCli(['--help'])).stdout
    const get = (await runCli(['get', '--help'])).stdout
    for (const text of [top, get]) {
      expect(text).toContain('KVORUM_SEEDS')
      expect(text).toContain('KVORUM_TOKEN')
      expect(text).toMatch(/Exit codes: 0 .*1 .*2 usage mistake/s)
    }
    expect(get).toContain('--fail-missing')
    expect(get).toMatch(/3 absent with --fail-missing/)
  })

  it('--version prints the version of package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../apps/cli/package.json', import.meta.url), 'utf8')) as { version: string }
    const run = await runCli(['--version'])
    expect(run.code).toBe(0)
    expect(run.stdout).toBe(`kvorum ${pkg.version}\n`)
  })

  it('no arguments prints the command list, exit 0', async () => {
    const run = await runCli([])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('Commands:')
  })
})

describe('usage mistakes: a short usage line on stderr, exit 2', () => {
  it('a misspelt command, subcommand or flag gets "did you mean"', async () => {
    const cmd = await runCli(['gte', 'default', 'k'])
    usageMistake(cmd, 'kvorum')
    expect(cmd.stderr).toContain('unknown command gte (did you mean get?)')
    const sub = await runCli(['cluster', 'rebalnce'])
    usageMistake(sub, 'kvorum cluster')
    expect(sub.stderr).toContain('unknown subcommand rebalnce (did you mean rebalance?)')
    const flag = await runCli(['get', 'default', 'k', '--seed', '127.0.0.1:7070'])
    usageMistake(flag, 'kvorum get')
    expect(flag.stderr).toContain('unknown flag --seed (did you mean --seeds?)')
    expect(flag.stderr).toContain('usage: kvorum get <store> <key>')
    const version = await runCli(['--verison'])
    expect(version.stderr).toContain('did you mean --version?')
  })

  it('nothing near: no suggestion', async () => {
    const run = await runCli(['frobnicate'])
    usageMistake(run, 'kvorum')
    expect(run.stderr).not.toContain('did you mean')
  })

  it('wrong arguments, a bad flag value, a missing subcommand', async () => {
    const missing = await runCli(['put', 'default', 'k'])
    usageMistake(missing, 'kvorum put')
    expect(missing.stderr).toContain('missing <value>')
    usageMistake(await runCli(['get', 'a', 'b', '--codec', 'jsno', '--seeds', '127.0.0.1:1']), 'kvorum get')
    usageMistake(await runCli(['get', 'a', 'b', '--timeout', 'soon', '--seeds', '127.0.0.1:1']), 'kvorum get')
    usageMistake(await runCli(['cluster']), 'kvorum cluster')
    usageMistake(await runCli(['status', '--seeds']), 'kvorum status')
    usageMistake(await runCli(['get', 'a', 'b', '--raw', '--json', '--seeds', '127.0.0.1:1']), 'kvorum get')
    usageMistake(await runCli(['get', 'a', 'b', '--compact', '--seeds', '127.0.0.1:1']), 'kvorum get')
    const negative = await runCli(['put', 'a', 'b', '-5'])
    usageMistake(negative, 'kvorum put')
    expect(negative.stderr).toContain('goes after --')
  })

  it('no seeds names --seeds and KVORUM_SEEDS; a seed that is not host:port is refused', async () => {
    const none = await runCli(['get', 'default', 'k'])
    usageMistake(none, 'kvorum get')
    expect(none.stderr).toContain('KVORUM_SEEDS')
    const bad = await runCli(['get', 'default', 'k', '--seeds', 'ftp://x:1'])
    usageMistake(bad, 'kvorum get')
    expect(bad.stderr).toContain('not host:port')
  })
})

describe('errors', () => {
  it('an unreachable host:port seed is one "kvorum: CODE: message" line, exit 1', async () => {
    const run = await runCli(['get', 'default', 'k', '--seeds', '127.0.0.1:1', '--timeout', '500ms'])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^kvorum: KV_BOOTSTRAP_FAILED: .*http:\/\/127\.0\.0\.1:1.*\n$/)
  })

  // An error the CLI does not expect, planted through --import: a JSON.parse that throws while --version reads package.json.
  const planted = `data:text/javascript,const parse = JSON.parse; JSON.parse = (t, ...r) => { if (String(t).includes('"version"')) throw new TypeError("planted"); return parse(t, ...r) }`

  it('an unexpected error is one line and a pointer to KVORUM_DEBUG; KVORUM_DEBUG=1 prints the stack', async () => {
    const run = await runCli(['--version'], { nodeArgs: ['--import', planted] })
    expect(run.code).toBe(1)
    expect(run.stderr).toBe('kvorum: TypeError: planted (run with KVORUM_DEBUG=1 for the stack)\n')
    const debug = await runCli(['--version'], { nodeArgs: ['--import', planted], env: { KVORUM_DEBUG: '1' } })
    expect(debug.code).toBe(1)
    expect(debug.stderr).toMatch(/^kvorum: TypeError: planted\nTypeError: planted\n\s+at /)
  })

  it('an error thrown outside the command (a stray timer) ends the run the same way', async () => {
    const timer = 'data:text/javascript,setTimeout(() => { throw new RangeError("stray") }, 200)'
    // put reads its value from stdin, which this run keeps open, so the timer fires first.
    const run = await runCli(['put', 'default', 'k', '-', '--seeds', '127.0.0.1:1'], { nodeArgs: ['--import', timer], holdStdin: true })
    expect(run.code).toBe(1)
    expect(run.stderr).toBe('kvorum: RangeError: stray (run with KVORUM_DEBUG=1 for the stack)\n')
  })
})

describe('a value typed at a terminal', () => {
  it('put - on a terminal says it reads stdin until Ctrl-D, then goes on', async () => {
    // util-linux's script(1) gives the CLI a pseudo-terminal; what the CLI prints comes back on script's stdout.
    const command = `${process.execPath} ${CLI_MAIN} put default k - --seeds 127.0.0.1:1 --timeout 500ms`
    const child = spawn('/usr/bin/script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    let typed = false
    child.stdin.on('error', () => undefined)
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    const killer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 15_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (typed || !output.includes('Ctrl-D')) return
      typed = true
      child.stdin.write('typed\n\u0004')
    })
    const code = await exited
    clearTimeout(killer)
    expect(output).toContain('kvorum: reading the value from stdin (Ctrl-D ends it)')
    expect(output).toContain('KV_BOOTSTRAP_FAILED')
    expect(code).toBe(1)
  })
})
