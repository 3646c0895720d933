export { connect, Kvorum, CLOSE_GRACE_MS, type NodeView } from './client.js'
export { CONNECT_DEFAULTS, type ConnectOptions } from './options.js'
export { Store, type StoreOptions, type HandleSettings, type CallOptions, type WriteOptions, type GetResult } from './store.js'
export { MAX_MANY_KEYS, type KeyResult, type PutItem, type DeleteItem } from './many.js'
export { MAX_CALL_ATTEMPTS, type RetryPolicy, type RetryInfo, type RetryOp } from './call.js'
export { HttpTransport, type HttpTransportOptions, type HttpExchange, type HttpAnswer, type TlsOptions } from './http-transport.js'
export type { Transport, NodeClient, RequestOptions } from './transport.js'
export { BATCH_DEFAULTS, type BatchOptions } from './batcher.js'
export { DETECTOR_DEFAULTS, type FailureDetectorOptions } from './failure-detector.js'
export { HANDOFF_DEFAULTS, type HandoffWorker, type HandoffOptions, type HandoffReport } from './handoff.js'
export { REPAIR_DEFAULTS, type RepairOptions, type RepairReport } from './anti-entropy.js'
export {
  CHANNELS,
  type ChannelName,
  type ClientEventMap,
  type ClientEventName,
  type NodeDownEvent,
  type NodeUpEvent,
  type ClusterChangedEvent,
  type ReadRepairEvent,
  type HintEvent,
  type BackgroundErrorEvent,
  type OperationEvent,
} from './events.js'
export { MAX_LISTENERS_PER_EVENT, type Listener } from './emitter.js'
export { LATENCY_WINDOW_SAMPLES, LATENCY_WINDOW_MS } from './latency-window.js'
export { REBALANCE_DEFAULTS, type RebalanceOptions, type RebalanceProgress } from './rebalance-options.js'
export type { MetricsSnapshot, NodeStats } from './metrics.js'
export { bytesCodec, utf8Codec, jsonCodec, type Codec, type CodecName, type JsonValue } from './codecs.js'
export { lastWriterWins, counter, orSet, type Counter, type ORSet } from './merges.js'
export {
  KvorumError,
  QuorumNotMetError,
  TimeoutError,
  IndeterminateWriteError,
  InvalidInputError,
  UnknownStoreError,
  TooManySiblingsError,
  StaleMetadataError,
  NodeUnavailableError,
  ClientClosedError,
  DecodeFailedError,
  AbortedError,
  UnauthorizedError,
  isRetryable,
  type ReplicaFailure,
} from '@kvorum/core'
