import type { Version } from './versions.js'

/**
 * True when `version` carries an expiry and `nowMs` (wall-clock ms) has reached
 * it. The decision reads only the version, so every replica and every reader
 * holding the same version agrees, up to the difference between their clocks.
 */
export function isExpired(version: Version, nowMs: number): boolean {
  return version.expiresAt !== undefined && nowMs >= version.expiresAt
}
