// train-worker.js — the playground's training thread: the package's trainer server answers the
// page's connectTrainer (create, load, fit with its callbacks and stop signal, evaluate,
// predict, save, state, setMetadata, dispose). Everything heavy runs here, none of it on the page.
import { serveTrainer } from '../src/index.js';

// Chromium runs scheduler.yield()'s continuations before the tasks already queued, the page's
// messages included: a fit that yields with it would see neither Stop nor a predict for the
// boundary until it ends. Without it, fit yields through plain tasks, which take turns with them.
if (typeof globalThis.scheduler?.yield === 'function') {
  Object.defineProperty(globalThis.scheduler, 'yield', { value: undefined, configurable: true });
}

serveTrainer(self);
