export { StorageEngine, type EngineOptions, type EngineStats } from './engine.js'
export { OverloadedError } from '@kvorum/core'
export type { Durability } from './schema.js'
