import { closeSync, openSync, readSync } from 'node:fs'
import { StringDecoder } from 'node:string_decoder'

/** How often the followed files are read, ms. */
const POLL_MS = 200
/** Bytes read from one file per poll at most, so a flood of log lines cannot hold the process. */
const MAX_READ_BYTES = 256 * 1024
/** An unfinished line longer than this is printed as it is, characters. */
const MAX_LINE_CHARS = 64 * 1024

/** pino's numeric levels by name. */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** A pino JSON line as `HH:MM:SS LEVEL message {other fields}`; any other line unchanged. */
export function formatLogLine(line: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line)
  } catch {
    return line
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.msg !== 'string') return line
  const { level, time, msg, pid: _pid, hostname: _host, node: _node, version: _version, ...rest } = entry
  const levelName = typeof level === 'number' ? (LEVELS[level] ?? String(level)) : String(level ?? '').toUpperCase()
  // The node writes ISO times; older builds wrote epoch ms.
  const at = typeof time === 'number' || typeof time === 'string' ? new Date(time) : null
  const clock = at && !Number.isNaN(at.getTime()) ? at.toISOString().slice(11, 19) : ''
  const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ''
  return `${clock} ${levelName} ${msg}${fields}`.trim()
}

interface Followed {
  readonly prefix: string
  readonly fd: number
  /** Keeps a character split between two reads whole. */
  readonly decoder: StringDecoder
  offset: number
  partial: string
}

/** Follows several log files from given offsets and prints their new lines interleaved, each with its prefix. */
export class LogFollower {
  private readonly files: Followed[]
  private readonly timer: NodeJS.Timeout
  private readonly buffer = Buffer.alloc(MAX_READ_BYTES)

  constructor(
    files: readonly { prefix: string; path: string; offset: number }[],
    private readonly write: (line: string) => void,
  ) {
    this.files = files.map((f) => ({ prefix: f.prefix, fd: openSync(f.path, 'r'), decoder: new StringDecoder('utf8'), offset: f.offset, partial: '' }))
    this.timer = setInterval(() => this.poll(), POLL_MS)
    this.timer.unref()
  }

  /** Print what was appended since the last poll. */
  poll(): void {
    for (const f of this.files) {
      const n = readSync(f.fd, this.buffer, 0, MAX_READ_BYTES, f.offset)
      if (n === 0) continue
      f.offset += n
      const lines = (f.partial + f.decoder.write(this.buffer.subarray(0, n))).split('\n')
      f.partial = lines.pop() ?? ''
      if (f.partial.length > MAX_LINE_CHARS) {
        lines.push(f.partial)
        f.partial = ''
      }
      for (const line of lines) if (line.trim()) this.write(`${f.prefix} | ${formatLogLine(line)}`)
    }
  }

  /** Print what is left and close the files. */
  stop(): void {
    clearInterval(this.timer)
    this.poll()
    for (const f of this.files) {
      if (f.partial.trim()) this.write(`${f.prefix} | ${formatLogLine(f.partial)}`)
      closeSync(f.fd)
    }
  }
}
