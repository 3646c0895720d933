export { StorageEngine, ENGINE_DEFAULTS, type EngineOptions } from './engine.js'
export type { Durability } from './schema.js'
