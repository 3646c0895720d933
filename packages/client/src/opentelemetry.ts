import type { Attributes, Meter } from '@opentelemetry/api'
import type { Kvorum } from './client.js'
import type { OperationEvent } from './events.js'

/**
 * The SDK's operation durations for an OpenTelemetry Meter
 * (`@kvorum/client/opentelemetry`), following the stable database client
 * semantic conventions. The application passes its Meter, so this module
 * imports only @opentelemetry/api's types (an optional peer dependency) and
 * nothing at run time.
 */

/**
 * `db.system.name`. The conventions list well-known systems and say to use a
 * custom value for any other; their one fallback, `other_sql`, is for SQL
 * databases, which Kvorum is not.
 */
export const DB_SYSTEM_NAME = 'kvorum'

/** The bucket bounds the conventions advise for `db.client.operation.duration`, seconds. */
export const DB_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

/** Options of openTelemetryMetrics. */
export interface OpenTelemetryOptions {
  /** Where the histogram is created, e.g. `metrics.getMeter('my-app')`. */
  readonly meter: Meter
}

/** What openTelemetryMetrics set up; `remove()` stops recording (the instrument stays with its Meter). */
export interface OpenTelemetryExport {
  remove(): void
}

/**
 * Record every store operation of `kv` in the `db.client.operation.duration`
 * histogram (seconds) with `db.system.name`, `db.operation.name` (get, put,
 * delete), `db.collection.name` (the store) and, on failure, `error.type`:
 * the KvorumError's stable code (`KV_TIMEOUT`, `KV_QUORUM_NOT_MET`, ...), or
 * the error's class name for anything else. `db.response.status_code` is
 * not set: a failed operation is the SDK's verdict over several replicas'
 * answers, not one response of the database.
 */
export function openTelemetryMetrics(kv: Kvorum, options: OpenTelemetryOptions): OpenTelemetryExport {
  const histogram = options.meter.createHistogram('db.client.operation.duration', {
    description: 'Duration of database client operations.',
    unit: 's',
    advice: { explicitBucketBoundaries: [...DB_DURATION_BUCKETS] },
  })
  const onOperation = (e: OperationEvent) => {
    const attributes: Attributes = {
      'db.system.name': DB_SYSTEM_NAME,
      'db.operation.name': e.op,
      'db.collection.name': e.store,
    }
    if (!e.ok) attributes['error.type'] = e.code ?? errorClass(e.error)
    histogram.record(e.durationMs / 1000, attributes)
  }
  kv.on('operation', onOperation)
  return {
    remove() {
      kv.off('operation', onOperation)
    },
  }
}

/** The conventions' fallback `_OTHER` when an error has no class name to give. */
function errorClass(error: unknown): string {
  const name = error instanceof Error ? error.constructor.name : ''
  return name || '_OTHER'
}
