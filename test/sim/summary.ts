import type { SeedResult } from './run.js'

/** Totals over many seeds, for the CLI, the test and docs/reliability.md. */
export class Summary {
  seeds = 0
  attempted = 0
  acknowledged = 0
  ackedAdds = 0
  lost = 0
  unexpected = 0
  resurrected = 0
  divergent = 0
  earlyReaps = 0
  virtualMs = 0
  readonly failed: number[] = []
  readonly errors = new Map<string, number>()
  readonly faults = new Map<string, number>()
  readonly healing = new Map<string, number>()
  readonly imports = new Map<string, number>()

  add(r: SeedResult): void {
    this.seeds++
    this.attempted += r.attempted
    this.acknowledged += r.acknowledged
    this.ackedAdds += r.ackedAdds
    this.lost += r.lost
    this.unexpected += r.unexpected
    this.resurrected += r.resurrected
    this.divergent += r.divergent
    this.earlyReaps += r.earlyReaps
    this.virtualMs += r.virtualMs
    if (r.failures.length > 0) this.failed.push(r.seed)
    for (const [code, n] of r.errors) this.errors.set(code, (this.errors.get(code) ?? 0) + n)
    for (const [what, n] of Object.entries(r.faults)) this.faults.set(what, (this.faults.get(what) ?? 0) + n)
    for (const [what, n] of Object.entries(r.imports)) this.imports.set(what, (this.imports.get(what) ?? 0) + n)
    for (const [what, n] of Object.entries(r.healing)) {
      // A maximum stays a maximum; the rest add up.
      const before = this.healing.get(what) ?? 0
      this.healing.set(what, what.endsWith('Max') ? Math.max(before, n) : before + n)
    }
  }

  format(): string {
    const errors = [...this.errors]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([c, n]) => `${c} ${n}`)
      .join(', ')
    return [
      `seeds run      ${this.seeds} (${this.failed.length} failed)`,
      `operations     ${this.attempted} attempted, ${this.acknowledged} acknowledged (${this.ackedAdds} set-adds)`,
      `failed ops     ${errors || 'none'}`,
      `faults         ${[...this.faults].map(([w, n]) => `${w} ${n}`).join(', ')}`,
      `healing        ${[...this.healing].map(([w, n]) => `${w} ${n}`).join(', ')}`,
      ...(this.imports.get('exports') ? [`imports        ${[...this.imports].map(([w, n]) => `${w} ${n}`).join(', ')}`] : []),
      `lost           ${this.lost}${this.ackedAdds > 0 ? ` (${((100 * this.lost) / this.ackedAdds).toFixed(1)}% of acknowledged set-adds)` : ''}`,
      `unexpected     ${this.unexpected}`,
      `resurrected    ${this.resurrected}`,
      `divergent      ${this.divergent}`,
      `early reaps    ${this.earlyReaps}`,
      `virtual time   ${(this.virtualMs / 1000).toFixed(0)} s`,
    ].join('\n')
  }
}
