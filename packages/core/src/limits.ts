/** Hard limits of the protocol; stores may set lower ones. */
export const LIMITS = {
  /** Longest key, in bytes (design: 1..1024). */
  maxKeyBytes: 1024,
  /** Largest value a store may allow, in bytes. */
  maxValueBytesCeiling: 16 * 1024 * 1024,
  /** Default largest value, in bytes (1 MiB). */
  maxValueBytes: 1024 * 1024,
  /** Siblings per key before a write is refused (Riak refuses at 100). */
  maxSiblings: 100,
  /** Most siblings a store's maxSiblings may allow, and so most siblings in one set of a request frame. */
  maxSiblingsCeiling: 1000,
  /** Siblings per key at which the SDK warns (Riak warns at 25). */
  warnSiblings: 25,
  /** Entries in one version vector. */
  maxClockEntries: 256,
  /** Items in one batch request. */
  maxBatchItems: 1024,
  /** Largest request body a node accepts, in bytes. */
  maxFrameBytes: 64 * 1024 * 1024,
  /** Segments (Merkle leaves) per partition: 2^10. */
  segmentBits: 10,
  /** Largest number of partitions in a ring: 2^16. */
  maxPartitions: 65536,
  /** Longest store name. */
  maxStoreNameLength: 64,
  /** Items in one page of a scan, tombstone list, hint list or hint acks. */
  maxPageItems: 10_000,
  /**
   * Siblings a decoder accepts in one set of an answer or a scan. Writes are
   * refused past a store's maxSiblings, but merges from replicas never are, so
   * a stored set may hold more; this only bounds a frame.
   */
  maxSiblingsDecoded: 100_000,
  /** Longest error message carried in an item result, bytes. */
  maxErrorMessageBytes: 4096,
  /** Longest error code carried in an item result, bytes. */
  maxErrorCodeBytes: 64,
} as const
