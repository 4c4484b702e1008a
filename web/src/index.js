// modelkeep — build or import a model, save it to IndexedDB, reload it, predict.
// Re-exports only (runtime.js loads the WebAssembly module once, on first import).
export { ModelError } from './errors.js';
export { Model, Layer, nn } from './model.js';
export {
  save,
  load,
  loadBytes,
  listModels,
  modelInfo,
  removeModel,
  copyModel,
  moveModel,
  onModelsChange,
  fileInfo,
} from './io.js';
export { requestPersistence, storageEstimate } from './storage.js';
