import type { OpRecord } from '../support/history.js'
import { checkSet } from '../support/set-checker.js'
import type { FaultHarness } from './harness.js'
import type { SdkState } from './protocol.js'

/** What one client process's SDK reported over its life (one SDK per process, never replaced). */
export interface SdkTrace {
  readonly pid: number
  /** How often it bootstrapped an SDK: 1, or the client replaced its SDK. */
  connects: number
  connected?: SdkState
  held?: SdkState
  released?: SdkState
  done?: SdkState & { readonly ops: number; readonly nodes: readonly string[] }
}

/**
 * One client process's SDK over a run: every client connects once, before
 * any fault or membership change, and keeps that SDK to the end. The idle
 * client is held with no operation in flight (and no definition poll) while
 * the change runs, so when released it still holds the old definition.
 */
export interface SdkReport {
  readonly worker: number
  readonly pid: number
  readonly idle: boolean
  /** SDKs the process bootstrapped: 1 unless it reconnected. */
  readonly connects: number
  /** Definition versions it held at connect, when parked, when released, at its end. */
  readonly connectedVersion: number | undefined
  readonly heldVersion: number | undefined
  readonly releasedVersion: number | undefined
  readonly endVersion: number | undefined
  /** Times it switched to a newer definition (kv.stats().clusterRefreshes). */
  readonly refreshes: number
  /** Its own set-adds: acknowledged, and of those absent at the end. */
  readonly acknowledged: number
  readonly lost: number
  /** Of those: adds it started after its release (with the old definition), acknowledged and lost. */
  readonly acknowledgedAfterRelease: number
  readonly lostAfterRelease: number
}

/** Each client's SDK trace and its own share of the set-add verdict. */
export function sdkReports(h: FaultHarness, adds: readonly OpRecord[], final: ReadonlyMap<string, ReadonlySet<string>>): SdkReport[] {
  return [...h.sdks.entries()].map(([worker, t]) => {
    const mine = adds.filter((o) => o.worker === String(worker))
    const afterRelease = t.released ? mine.filter((o) => o.invokedAt >= (t.released?.at ?? 0)) : []
    const all = checkSet(mine, final)
    const late = checkSet(afterRelease, final)
    return {
      worker,
      pid: t.pid,
      idle: worker === h.idleClient,
      connects: t.connects,
      connectedVersion: t.connected?.version,
      heldVersion: t.held?.version,
      releasedVersion: t.released?.version,
      endVersion: t.done?.version,
      refreshes: t.done?.refreshes ?? 0,
      acknowledged: all.acknowledged,
      lost: all.lost,
      acknowledgedAfterRelease: late.acknowledged,
      lostAfterRelease: late.lost,
    }
  })
}

/**
 * What must hold of the SDKs: each ends holding the definition the nodes
 * hold (`finalVersion`), with the one SDK it started with. In a membership
 * scenario each also started before the change, and the idle client was
 * released still holding an older definition, then had adds acknowledged,
 * none lost.
 */
export function sdkViolations(reports: readonly SdkReport[], finalVersion: number, membership: boolean): string[] {
  const out: string[] = []
  for (const r of reports) {
    const who = `client ${r.worker} (PID ${r.pid})`
    if (r.connects !== 1) out.push(`${who} bootstrapped ${r.connects} SDKs, not one`)
    if (r.endVersion !== undefined && r.endVersion !== finalVersion)
      out.push(`${who} ends holding cluster version ${r.endVersion}; the nodes hold ${finalVersion} (did the change end after the writers stopped?)`)
    if (membership && r.connectedVersion !== undefined && r.connectedVersion >= finalVersion)
      out.push(`${who} connected at cluster version ${r.connectedVersion}, not before the change (final ${finalVersion})`)
    if (!r.idle || !membership) continue
    if (r.releasedVersion === undefined) out.push(`${who}, the idle client, was never held and released`)
    else if (r.releasedVersion >= finalVersion)
      out.push(`${who}, the idle client, learned cluster version ${r.releasedVersion} while idle: it did not meet the change with the old definition`)
    if (r.acknowledgedAfterRelease === 0) out.push(`${who}, the idle client, had no add acknowledged after its release`)
    if (r.lostAfterRelease > 0) out.push(`${who}, the idle client, lost ${r.lostAfterRelease} acknowledged adds made after its release`)
  }
  return out
}

/** One line per SDK for a report. */
export function sdkNotes(reports: readonly SdkReport[]): string {
  const lines = reports.map((r) => {
    const idle = r.idle
      ? `, idle through the change: held at v${r.heldVersion ?? '?'}, released at v${r.releasedVersion ?? '?'}, then ${r.acknowledgedAfterRelease} adds acknowledged, ${r.lostAfterRelease} lost`
      : ''
    return `  - client ${r.worker} (PID ${r.pid}, ${r.connects} SDK): v${r.connectedVersion ?? '?'} → v${r.endVersion ?? '?'} in ${r.refreshes} refreshes; ${r.acknowledged} adds acknowledged, ${r.lost} lost${idle}`
  })
  return `- SDKs, one per client process, started before any fault and never restarted:\n${lines.join('\n')}`
}
