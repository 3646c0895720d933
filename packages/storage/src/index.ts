export { StorageEngine, type EngineOptions, type EngineStats } from './engine.js'
export { OverloadedError } from './group-commit.js'
export type { Durability } from './schema.js'
