import type { ClusterDef } from '@kvorum/core'
import { clusterRequest } from './cluster-json.js'
import { chunkedFrame, contentTypeFrame, defectiveFrame, mutatedFrame, strangerFrame, validFrame } from './frames.js'
import type { Pool } from './gen.js'
import { authRequest, hostRequest, pathRequest, wrongMethod } from './paths.js'
import { validRead } from './reads.js'
import type { FuzzRequest } from './request.js'

type Make = (pool: Pool, def: ClusterDef) => FuzzRequest

/** The mix of requests: mostly damaged frames, with enough valid traffic that data keeps changing. */
const MIX: readonly (readonly [number, Make])[] = [
  [10, validFrame],
  [28, mutatedFrame],
  [14, defectiveFrame],
  [5, strangerFrame],
  [5, contentTypeFrame],
  [1, chunkedFrame],
  [5, authRequest],
  [2, hostRequest],
  [12, pathRequest],
  [4, wrongMethod],
  [8, clusterRequest],
  [6, validRead],
]

/** The next request of the stream a seed names. */
export function nextRequest(pool: Pool, def: ClusterDef): FuzzRequest {
  return pool.prng.weighted(MIX)(pool, def)
}
