/**
 * A one-line progress bar on stderr when it is a terminal; otherwise a plain
 * line every 10% so logs stay readable.
 */
export class Progress {
  private lastDecile = -1
  private readonly tty = process.stderr.isTTY === true

  constructor(private readonly label: string) {}

  update(done: number, total: number, detail: string): void {
    const fraction = total === 0 ? 1 : done / total
    if (this.tty) {
      const width = 30
      const filled = Math.round(fraction * width)
      process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${detail}   `)
      return
    }
    const decile = Math.floor(fraction * 10)
    if (decile !== this.lastDecile) {
      this.lastDecile = decile
      process.stderr.write(`${this.label} ${done}/${total} ${detail}\n`)
    }
  }

  done(): void {
    if (this.tty) process.stderr.write('\n')
  }
}
