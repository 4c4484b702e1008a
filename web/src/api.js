// api.js — everything the package exports, whichever entry imports it (index.js for browsers and
// bundlers, node.js for Node: each registers its platform with runtime.js first). Re-exports only.
export { ModelError } from './errors.js';
export { ready } from './runtime.js';
export { Model, Layer, nn } from './model.js';
export { Trainer } from './train.js';
export { serveTrainer, connectTrainer } from './worker.js';
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
