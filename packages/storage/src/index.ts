export { StorageEngine, ENGINE_DEFAULTS, type EngineOptions } from './engine.js'
export { type Durability, type SqliteMemory, SQLITE_MEMORY } from './schema.js'
