// Compiled by `tsc --noEmit` in npm test: the declarations in web/index.d.ts
// describe the API as documented (a wrong type here fails the build).
import {
  ready,
  nn,
  Model,
  ModelError,
  save,
  load,
  listModels,
  modelInfo,
  copyModel,
  moveModel,
  removeModel,
  onModelsChange,
  fileInfo,
  Trainer,
  serveTrainer,
  connectTrainer,
  type TrainerState,
  type TrainingExportInfo,
  type TorchCheckpointOptions,
  type History,
  type Evaluation,
  type EpochLogs,
  requestPersistence,
  storageEstimate,
  type DType,
  type ReadyOptions,
  type ModelInfo,
  type ExportInfo,
  type Output,
  type LoadReport,
  type ErrorCode,
  type CoreErrorCode,
  type JsErrorCode,
} from 'modelkeep';

/** ModelError's code is a closed union: a misspelt code is a type error, and narrowing works. */
export function describeError(e: unknown): string {
  if (!(e instanceof ModelError)) return 'not ours';
  const code: ErrorCode = e.code;
  // @ts-expect-error 'truncate' is no ErrorCode, so this comparison cannot be true
  if (e.code === 'truncate') return 'never';
  if (e.code === 'truncated' || e.code === 'checksum_mismatch') {
    const core: CoreErrorCode = e.code;
    return `the file is damaged (${core})`;
  }
  if (e.code === 'quota_exceeded') {
    const js: JsErrorCode = e.code;
    return `${js}: ${e.details?.needed ?? '?'} bytes needed`;
  }
  return code;
}
// @ts-expect-error not a code
export const wrong = new ModelError('no_such_code', 'a ModelError takes only an ErrorCode');
export const right = new ModelError('not_found', 'a JavaScript-only code');
const e0 = () => new ModelError('not_ready', 'await ready() first');

export async function tutorial(): Promise<number> {
  const loaded: Promise<void> = ready();
  await loaded;
  // Where the .wasm is, for bundlers that do not copy it: a URL, a string, bytes or a Response.
  const options: ReadyOptions[] = [
    { wasm: new URL('https://example.test/modelkeep.wasm') },
    { wasm: '/assets/modelkeep.wasm' },
    { wasm: new Uint8Array(8) },
    { wasm: new ArrayBuffer(8) },
    { importer: true },
    { wasm: '/assets/modelkeep.wasm', importerWasm: new URL('https://example.test/importer.wasm') },
  ];
  for (const o of options) await ready(o);
  // @ts-expect-error a number is no .wasm
  await ready({ wasm: 42 });
  // @ts-expect-error importer is a boolean
  await ready({ importer: 'yes' });
  if (!(e0() instanceof ModelError) || e0().code !== 'not_ready') throw new Error('not_ready is an ErrorCode');
  const model: Model = nn.sequential(nn.linear(3, 5), nn.relu(), { seed: 1 });
  const y: Output = model.forward([[1, 2, 3]]);
  const flat: Output = model.forward(new Float32Array([1, 2, 3]), [1, 3]);
  const dtype: DType = 'f16';
  const info: ModelInfo = await save(model, 'indexeddb://my-model', {
    dtype,
    metadata: { note: 'v1' },
    onProgress: ({ loaded, total }) => void (loaded / total),
  });
  // A .pt / .safetensors name exports the state dict: ExportInfo, told apart by `format`.
  const exported: ExportInfo = await save(model, './model.pt');
  const exportedAs: 'pt' | 'safetensors' = exported.format;
  const exportedLayers: string[] = exported.layers;
  // @ts-expect-error an export wrote no .mkp, so it has no .mkp version
  void exported.version;
  // @ts-expect-error an export is not a ModelInfo
  const notInfo: ModelInfo = await save(model, 'downloads://model.safetensors');
  void notInfo;
  const somewhere: string = Math.random() < 0.5 ? './model.mkp' : './model.pt';
  const either = await save(model, somewhere);
  const described2: string = 'format' in either ? either.format : either.version;
  const m2 = await load('indexeddb://my-model', { onProgress: (p) => void p.loaded });
  const report: LoadReport = m2.loadStateDict(model.stateDict(), { strict: true });
  const all: Record<string, ModelInfo> = await listModels();
  await modelInfo('indexeddb://my-model');
  await copyModel('indexeddb://a', 'indexeddb://b');
  await moveModel('indexeddb://b', 'indexeddb://c');
  await removeModel('indexeddb://c');
  const unsubscribe: () => void = await onModelsChange((e) => void e.names.length);
  unsubscribe();
  const bytes: Uint8Array = model.toBytes({ dtype: 'int8' });
  const named = nn.sequential(
    { fc1: nn.linear(3, 5) },
    nn.gelu({ approximate: 'tanh' }),
    nn.layerNorm(5, { eps: 1e-6 }),
  );
  const rooted: Model = nn.root(nn.linear(1, 1), { seed: 3 });
  rooted.dispose();
  const fromSpec = Model.fromSpec('fc1=Linear(3,5)', { seed: 2 });
  const fromPt: Model = await load('/models/tutorial_full.pt', { assumeSequential: true });
  const fromSt: Model = Model.fromBytes(bytes, { architecture: 'fc1=Linear(3,5)' });
  const where: string = `${fromPt.source?.format}:${fromPt.source?.holds}:${fromSt.source?.architectureFrom}`;
  const pt: Uint8Array = fromPt.toBytes({ format: 'pt', dtype: 'bf16' });
  const described = fileInfo(pt);
  const globals: number = described.format === 'modelkeep' ? described.tensors[0].bytes : described.globals.length;
  const compact: Model = await load('indexeddb://small', { weightDtype: 'int8' });
  const unchanged: string[] = compact.setWeightDtype('f16').unchanged;
  const held: DType = compact.weightDtype;
  const heldBytes: number = compact.memoryBytes + unchanged.length + held.length;
  compact.dispose();
  fromPt.dispose();
  fromSt.dispose();
  const persisted: boolean = await requestPersistence();
  const estimate = await storageEstimate();
  try {
    Model.fromBytes(bytes.subarray(0, 10));
  } catch (e) {
    if (e instanceof ModelError && e.code === 'truncated') void e.details?.needed;
  }
  {
    // Explicit resource management where the lib has it (this project's lib: ESNext.Disposable).
    using scoped = nn.sequential(nn.linear(3, 5));
    scoped.forward([[1, 2, 3]]);
  }
  model.dispose();
  m2[Symbol.dispose]();
  named.dispose();
  fromSpec.dispose();
  return (
    y.data.length +
    flat.shape[0] +
    info.params +
    report.missingKeys.length +
    Object.keys(all).length +
    fileInfo(bytes).bytes +
    where.length +
    globals +
    (persisted ? 1 : 0) +
    (estimate?.quota ?? 0) +
    m2.paramCount +
    model.layers.length +
    heldBytes +
    exportedAs.length +
    exportedLayers.length +
    described2.length
  );
}

/** Training (docs/API.md "Training"): the step calls, fit, checkpoints, the Worker driver. */
export async function training(model: Model, worker: Worker): Promise<number> {
  const trainer: Trainer = await Trainer.create(model, {
    optimizer: { type: 'adam', lr: 0.01, betas: [0.9, 0.99] },
    loss: 'cross_entropy(label_smoothing=0.1)',
    scheduler: 'step_lr(step_size=10, gamma=0.5)',
    batchSize: 16,
    seed: 1,
  });
  // @ts-expect-error batchSize is a number
  await Trainer.create(model, { batchSize: '16' });
  trainer.zeroGrad();
  const y: Output = trainer.forward([[1, 2, 3]]);
  const loss: number = trainer.loss([2]);
  trainer.backward();
  trainer.step();
  const batchLoss: number = trainer.trainBatch(new Float32Array(6), [0, 1], { xShape: [2, 3] });
  trainer.lr = 0.005;
  trainer.metadata = { run: 'a' };
  trainer.eval();
  trainer.train();
  const controller = new AbortController();
  const epochs: EpochLogs[] = [];
  const history: History = await trainer.fit([[1, 2, 3]], [1], {
    epochs: 2,
    validationSplit: 0.1,
    metrics: ['accuracy'],
    onBatchEnd: ({ loss: l }) => void l,
    onEpochEnd: (logs) => void epochs.push(logs),
    signal: controller.signal,
  });
  const evaluation: Evaluation = trainer.evaluate({ data: new Float32Array(3), shape: [1, 3] }, [1]);
  const saved: ModelInfo = await save(trainer, 'indexeddb://run', { training: true });
  const resumed: Trainer = await load('indexeddb://run', { training: true });
  const again: Trainer = await Trainer.load('indexeddb://run');
  const state: TrainerState = resumed.state();
  const bytes: Uint8Array = trainer.toBytes({ metadata: { note: 'x' } });
  const torchBytes: Uint8Array = trainer.toBytes({ format: 'pt', metadata: { loss: '0.5' } });
  const torchSaved: TrainingExportInfo = await save(trainer, 'run.pt', { training: true });
  const fromTorch: Trainer = await load('run.pt', {
    training: true,
    architecture: 'Linear(3,2)',
    loss: 'cross_entropy',
    optimizer: 'adam',
    batchSize: 8,
  });
  const fromTorch2: Trainer = await Trainer.load(torchBytes, { loss: { type: 'mse' }, assumeSequential: true });
  // @ts-expect-error: a PyTorch checkpoint needs its loss
  void Trainer.load(torchBytes, { architecture: 'Linear(3,2)' });
  const torchOptions: TorchCheckpointOptions = { loss: 'mse', architecture: 'Linear(3,2)' };
  void torchOptions;
  void [torchSaved.kind === 'training_checkpoint', fromTorch, fromTorch2];
  const remote = connectTrainer(worker);
  await remote.create({ spec: 'Linear(3,2)', optimizer: 'sgd(lr=0.1)', loss: 'cross_entropy' });
  const remoteHistory: History = await remote.fit({ data: new Float32Array(3), shape: [1, 3] }, [1], { epochs: 1 });
  const remoteState: TrainerState = await remote.state();
  await remote.save('indexeddb://remote', { training: true });
  await remote.dispose();
  if (typeof self !== 'undefined' && false) serveTrainer();
  for (const t of [trainer, resumed, again]) t.dispose();
  return (
    y.data.length +
    loss +
    batchLoss +
    history.epoch.length +
    (history.stopped ? 1 : 0) +
    (evaluation.accuracy ?? 0) +
    saved.params +
    state.steps +
    trainer.epoch +
    trainer.steps +
    bytes.length +
    remoteHistory.history.loss.length +
    remoteState.epoch
  );
}
