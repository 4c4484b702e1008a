// train-worker.js — the playground's training thread: the package's trainer server answers the
// page's connectTrainer (create, load, fit with its callbacks and stop signal, evaluate,
// predict, save, state, setMetadata, dispose). Everything heavy runs here, none of it on the page.
import { serveTrainer } from '../src/index.js';

serveTrainer(self);
