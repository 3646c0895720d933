export { connect, Kvorum, type ConnectOptions } from './client.js'
export { Store, type StoreOptions, type CallOptions, type WriteOptions, type GetResult } from './store.js'
export { HttpTransport, type HttpTransportOptions, type HttpExchange, type HttpAnswer } from './http-transport.js'
export { MemoryTransport } from './memory-transport.js'
export type { Transport, NodeClient, RequestOptions } from './transport.js'
export { FailureDetector, type FailureDetectorOptions } from './failure-detector.js'
export type { BatchOptions } from './batcher.js'
export { HandoffWorker, type HandoffOptions, type HandoffReport } from './handoff.js'
export { AntiEntropy, type RepairOptions, type RepairReport } from './anti-entropy.js'
export type { MetricsSnapshot } from './metrics.js'
export { Histogram } from './metrics.js'
export { bytesCodec, utf8Codec, jsonCodec, type Codec, type CodecName } from './codecs.js'
export { lastWriterWins, counter, orSet, type Counter, type ORSet } from './merges.js'
export {
  KvorumError, QuorumNotMetError, TimeoutError, IndeterminateWriteError, InvalidInputError, UnknownStoreError,
  TooManySiblingsError, StaleMetadataError, NodeUnavailableError, type ReplicaFailure,
} from '@kvorum/core'
