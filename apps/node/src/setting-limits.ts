/** Largest database quota a node may be given, MiB (16 TiB). */
export const MAX_DB_MIB_LIMIT = 16 * 1024 * 1024
/** Most hinted keys per target a node may be told to keep. */
export const MAX_HINTS_LIMIT = 100_000_000
/** Longest hint age a node may be told to keep, s (ten years). */
export const MAX_HINT_AGE_S_LIMIT = 10 * 365 * 24 * 3600
