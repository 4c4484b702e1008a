// Type declarations for the modelkeep package (hand-written; the sources are plain ESM).
// Must type-check under TypeScript's default lib for any target (ES2020 and up), without
// skipLibCheck or a lib override: tests/package/publish.test.mjs compiles the README's quick start
// against the packed package with TypeScript 5 and 7.

declare global {
  /**
   * `Symbol.dispose` (explicit resource management), declared here too so that `Model`'s
   * `[Symbol.dispose]()` type-checks when the project's lib is older than ESNext / ES2026 (the
   * same declaration as lib.esnext.disposable's, which it merges with; @types/node does the same).
   * At run time it exists in Node >= 20.4 and current browsers; where it does not, Model has no
   * such method and `dispose()` is the way.
   */
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

export type DType = 'f32' | 'f16' | 'bf16' | 'int8';

/** Where ready() finds the .wasm: a URL (or string) to fetch, its bytes, or a fetch() Response. */
export type WasmSource = URL | string | ArrayBuffer | ArrayBufferView | Response;

export interface ReadyOptions {
  /**
   * The .wasm to load instead of the one next to the package: for bundlers that do not copy
   * `new URL(..., import.meta.url)` assets (Rollup without plugins, esbuild), copy
   * `modelkeep/modelkeep.wasm` next to the bundle and pass its URL. Used by the call that loads.
   */
  wasm?: WasmSource;
  /**
   * The importer's .wasm (PyTorch / safetensors), for the same bundlers: copy
   * `modelkeep/importer.wasm` next to the bundle and pass its URL. Remembered until the importer
   * is first loaded (by `importer: true`, or the first .pt / .safetensors file).
   */
  importerWasm?: WasmSource;
  /**
   * Also load the importer module now (another .wasm, ~181 KiB gzipped), so that the synchronous
   * calls that need it work: fileInfo, Model.fromBytes and loadStateDict on a .pt or .safetensors
   * file, toBytes({ format: 'pt' | 'safetensors' }). They throw 'not_ready' until then. The async
   * load() and save() fetch it themselves on first use; .mkp files never need it.
   */
  importer?: boolean;
}

/**
 * Loads and instantiates the core WebAssembly module, once (like tf.ready()): later calls resolve
 * at once; a load that failed is tried again by the next call. Await it before the synchronous API
 * (nn.sequential, Model.fromSpec, Model.fromBytes, fileInfo, toBytes, ...), which throws
 * ModelError 'not_ready' until it has resolved; every async function but load() and loadBytes()
 * (save, listModels, ...) awaits it. load() alone, with nothing else loaded, fetches only the
 * reader (a smaller module that loads .mkp models and runs them); its models move to the core once
 * ready() has loaded it. The importer (PyTorch / safetensors, training) is a third module, loaded
 * on first use or by `ready({ importer: true })`.
 */
export function ready(options?: ReadyOptions): Promise<void>;

/**
 * The C++ core's codes (core/status.hpp's MODELKEEP_CODES, less `ok`), in its order: docs/API.md
 * "Error codes". tests/js/codes.test.mjs checks this list against both.
 */
export type CoreErrorCode =
  // the file format (see format.hpp)
  | 'bad_magic'
  | 'unsupported_version'
  | 'truncated'
  | 'trailing_bytes'
  | 'checksum_mismatch'
  | 'header_too_large'
  | 'bad_varint'
  | 'bad_section'
  | 'unknown_section'
  | 'unknown_kind'
  | 'bad_alignment'
  | 'limit_exceeded'
  | 'bad_name'
  | 'duplicate_name'
  | 'unknown_dtype'
  | 'unknown_layer'
  | 'invalid_argument'
  | 'size_overflow'
  | 'bad_padding'
  | 'bad_scale'
  | 'arch_mismatch'
  | 'wrong_kind'
  // models and state dicts
  | 'shape_mismatch'
  | 'missing_key'
  | 'unexpected_key'
  // the SPEC language and the CLI
  | 'invalid_spec'
  | 'invalid_input'
  | 'io_error'
  | 'out_of_memory'
  // reading other formats: PyTorch (zip, legacy), safetensors (import.hpp)
  | 'unknown_format'
  | 'corrupt_zip'
  | 'unsupported_compression'
  | 'torchscript_archive'
  | 'legacy_module'
  | 'bad_pickle'
  | 'disallowed_global'
  | 'disallowed_opcode'
  | 'disallowed_persistent_id'
  | 'missing_storage'
  | 'storage_size_mismatch'
  | 'view_out_of_bounds'
  | 'unsupported_tensor'
  | 'unsupported_byteorder'
  | 'needs_architecture'
  | 'bad_header_json'
  | 'bad_offsets'
  // builds
  | 'needs_importer'
  // training (docs/TRAINING.md)
  | 'invalid_hyperparameter'
  | 'target_out_of_range'
  | 'needs_f32'
  | 'unsupported_optimizer';

/** The codes only the JavaScript layer throws: docs/API.md "Errors". */
export type JsErrorCode =
  | 'disposed'
  | 'not_found'
  | 'quota_exceeded'
  | 'storage_unavailable'
  | 'storage_blocked'
  | 'corrupt_record'
  | 'network_error'
  | 'not_ready';

export type ErrorCode = CoreErrorCode | JsErrorCode;

/** Every error the package throws. `code` is stable: see docs/API.md for the list. */
export class ModelError extends Error {
  readonly name: 'ModelError';
  readonly code: ErrorCode;
  readonly details?: { needed?: number; available?: number; [key: string]: unknown };
  constructor(code: ErrorCode, message: string, details?: object);
}

export interface Output {
  shape: number[];
  data: Float32Array;
}

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** { '0.weight': { shape, data }, ... } in PyTorch's order. */
export type StateDict = Record<string, Tensor>;

export interface LoadReport {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export interface LayerInfo {
  name: string;
  kind: string;
  spec: string;
}

/** A layer description made by an `nn` builder. */
export class Layer {
  readonly spec: string;
  readonly name?: string;
  named(name: string): Layer;
}

export type FileFormat = 'modelkeep' | 'torch-zip' | 'torch-legacy' | 'safetensors';

export interface ImportOptions {
  /** A SPEC ("fc1=Linear(3,5)"): build this model and load the file's tensors into it, strictly. */
  architecture?: string;
  /** A pickled custom nn.Module: run its leaf modules in registration order (forward() is not in the file). */
  assumeSequential?: boolean;
  /**
   * With an architecture: only the file's keys that start with this prefix are the model's, the
   * prefix taken off ('module.' for DataParallel, 'model.' for Lightning, '_orig_mod.' for
   * torch.compile). A strict-load error names the prefix when the file's keys carry one.
   */
  prefix?: string;
  /**
   * A PyTorch checkpoint: the entry that holds the model ('state_dict', 'ema', ...; fileInfo's `entries`);
   * a zip that holds torch files (Stable-Baselines3's model.zip): the file to read ('policy.pth').
   */
  entry?: string;
  /** Hold the Linear weights in this dtype once loaded (see Model#setWeightDtype); by default as stored. */
  weightDtype?: DType;
}

export interface ModelSource {
  format: FileFormat;
  /** 'model', 'state dict', "checkpoint['model_state_dict']", 'module __main__.Model', ... */
  holds: string;
  architectureFrom: 'file' | 'module tree' | 'architecture option' | 'assume_sequential';
}

export interface Progress {
  loaded: number;
  total: number;
}

/**
 * `seed` (an integer in [0, 2^53)) seeds modelkeep's own deterministic generator (PCG32): the same
 * seed gives the same weights in every build (native, wasm, Node, browsers), drawn from PyTorch's
 * distributions — but it is not `torch.manual_seed`: PyTorch gives other weights for the same
 * number. Without it, a random seed.
 */
export interface SeedOptions {
  seed?: number;
}

export class Model {
  /**
   * A new model from a SPEC ("fc1=Linear(3,5),ReLU"; docs/SPEC.md) with PyTorch's initialisation.
   * `seed`: see SeedOptions (modelkeep's own generator, not torch.manual_seed).
   */
  static fromSpec(spec: string, options?: SeedOptions): Model;
  /**
   * A model from the bytes of a .mkp, PyTorch (.pt: zip or legacy) or safetensors file, detected
   * from the bytes; nothing in a file is ever executed. Files that hold weights but not what runs
   * need `architecture` (a SPEC) or, for a pickled custom module, `assumeSequential`
   * (ModelError 'needs_architecture' otherwise). A PyTorch or safetensors file needs the importer
   * module: 'not_ready' until `await ready({ importer: true })` (the async load() fetches it).
   */
  static fromBytes(bytes: Uint8Array | ArrayBuffer, options?: ImportOptions): Model;
  /** Where a loaded model came from; null for models built in the page. */
  readonly source: ModelSource | null;
  forward(input: number[] | number[][] | number[][][]): Output;
  forward(input: Float32Array | ArrayLike<number>, shape: number[]): Output;
  stateDict(): StateDict;
  loadStateDict(
    stateDict:
      Record<string, { shape: number[]; data: ArrayLike<number> }> | Map<string, Tensor> | Uint8Array | ArrayBuffer,
    options?: { strict?: boolean },
  ): LoadReport;
  /**
   * .mkp bytes; or the state dict as 'safetensors' / 'pt' (torch.load(path, weights_only=True) loads
   * it), which needs the importer module: 'not_ready' until `await ready({ importer: true })` (the
   * async save() fetches it).
   */
  toBytes(options?: {
    format?: 'mkp' | 'safetensors' | 'pt';
    dtype?: DType;
    metadata?: Record<string, string>;
    stateDictOnly?: boolean;
  }): Uint8Array;
  readonly architecture: string;
  readonly layers: LayerInfo[];
  readonly paramCount: number;
  /** The dtype the Linear weights are held in; 'f16' | 'bf16' | 'int8' are compact (never expanded). */
  readonly weightDtype: DType;
  /** Holds every Linear weight in `dtype`; layers whose values the dtype cannot hold are left and listed. */
  setWeightDtype(dtype: DType): { unchanged: string[] };
  /** Bytes the model's tensors hold in memory. */
  readonly memoryBytes: number;
  readonly disposed: boolean;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Layer builders named like torch.nn; a bad argument throws ModelError 'invalid_argument'. */
export const nn: {
  linear(inFeatures: number, outFeatures: number, options?: { bias?: boolean }): Layer;
  relu(): Layer;
  leakyRelu(negativeSlope?: number): Layer;
  sigmoid(): Layer;
  tanh(): Layer;
  gelu(options?: { approximate?: 'none' | 'tanh' }): Layer;
  silu(): Layer;
  softmax(dim?: -1): Layer;
  logSoftmax(dim?: -1): Layer;
  identity(): Layer;
  dropout(p?: number): Layer;
  flatten(startDim?: number, endDim?: number): Layer;
  layerNorm(normalizedShape: number, options?: { eps?: number; elementwiseAffine?: boolean; bias?: boolean }): Layer;
  batchNorm1d(numFeatures: number, options?: { eps?: number; affine?: boolean; trackRunningStats?: boolean }): Layer;
  /** Children named "0", "1", ... unless named; a last `{ seed }` (see SeedOptions) fixes the weights. */
  sequential(...layers: Array<Layer | Record<string, Layer> | SeedOptions>): Model;
  /** A model that is this one layer (SPEC "=Linear(3,5)"): its keys have no prefix ('weight', 'bias'), as torch's bare nn.Linear. */
  root(layer: Layer, options?: SeedOptions): Model;
};

/** What listModels() / modelInfo() / fileInfo() tell without reading the weights. */
export interface ModelInfo {
  kind: 'model' | 'state_dict';
  version: string;
  dtype: DType;
  params: number;
  architecture: string | null;
  layers: string[];
  metadata: Record<string, string>;
  bytes: number;
  dateSaved?: string;
  /** A training checkpoint (saved with { training: true }): the model plus its TRAINING section. */
  training?: true;
}

export type Source = string | URL | Uint8Array | ArrayBuffer | Blob;

/**
 * What save() resolves to when it exports the state dict as PyTorch (.pt / .pth) or safetensors
 * (a path or downloads:// name ending so): ModelInfo's fields less `version` (no .mkp was
 * written), and `format` saying which. `'format' in info` tells it from a ModelInfo.
 */
export interface ExportInfo extends Omit<ModelInfo, 'kind' | 'version'> {
  format: 'pt' | 'safetensors';
  kind: 'state_dict';
  dateSaved: string;
}

/**
 * What save(trainer, 'run.pt', { training: true }) resolves to: a PyTorch general checkpoint
 * ({'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}) was written.
 */
export interface TrainingExportInfo extends Omit<ModelInfo, 'kind' | 'version' | 'training'> {
  format: 'pt';
  kind: 'training_checkpoint';
  training: true;
  dateSaved: string;
}

export interface SaveOptions {
  dtype?: DType;
  metadata?: Record<string, string>;
  onProgress?: (p: Progress) => void;
  /**
   * Save a Trainer as its checkpoint (a .mkp: the model in float32 plus its TRAINING section; to a
   * .pt / .pth name, a PyTorch general checkpoint), which load(url, { training: true }) resumes.
   * Without it, a Trainer saves its model.
   */
  training?: boolean;
}

/**
 * A Trainer's checkpoint as PyTorch's general checkpoint. Its 'loss' is metadata.loss when given
 * (the only metadata key allowed), else the last step's loss, else the trainer's metadata.loss.
 */
export function save(
  trainer: Trainer,
  url: `${string}.pt` | `${string}.pth`,
  options: SaveOptions & { training: true },
): Promise<TrainingExportInfo>;
/** A Trainer's checkpoint (.mkp), to any target but a .safetensors name ('invalid_argument'). */
export function save(
  trainer: Trainer,
  url: string | URL,
  options: SaveOptions & { training: true },
): Promise<ModelInfo>;
/** Into a store (indexeddb://name): always a .mkp, whatever the name ends with. */
export function save(
  model: Model | Trainer | Uint8Array,
  url: `indexeddb://${string}`,
  options?: SaveOptions,
): Promise<ModelInfo>;
/** A name ending .pt, .pth or .safetensors exports the state dict in that format. */
export function save(
  model: Model | Trainer,
  url: `${string}.pt` | `${string}.pth` | `${string}.safetensors`,
  options?: SaveOptions,
): Promise<ExportInfo>;
/** indexeddb://name, downloads://name, or (Node) a path / file:// URL. */
export function save(
  model: Model | Trainer | Uint8Array,
  url: string | URL,
  options?: SaveOptions,
): Promise<ModelInfo | ExportInfo>;
/**
 * A Trainer resumed from a checkpoint (save(trainer, url, { training: true })); 'wrong_kind' for a
 * file without training state. The same as Trainer.load(source).
 */
export function load(source: Source, options: { training: true; onProgress?: (p: Progress) => void }): Promise<Trainer>;
/**
 * A Trainer continuing a PyTorch general checkpoint (.pt): its model_state_dict in `architecture`,
 * its optimizer's options and state. The same as Trainer.load(source, options).
 */
export function load(source: Source, options: TorchCheckpointOptions & { training: true }): Promise<Trainer>;
/**
 * A model from indexeddb://name, a URL, a File/Blob, bytes or (Node) a path: .mkp, PyTorch or
 * safetensors. With no other module loaded, a plain .mkp is read by the reader module alone (load
 * and forward; the rest once ready() has loaded the core); a load that fails loads the core
 * before it rejects.
 */
export function load(source: Source, options?: ImportOptions & { onProgress?: (p: Progress) => void }): Promise<Model>;
export function loadBytes(source: Source, options?: { onProgress?: (p: Progress) => void }): Promise<Uint8Array>;
export function listModels(): Promise<Record<string, ModelInfo>>;
export function modelInfo(url: string): Promise<ModelInfo>;
export function removeModel(url: string): Promise<void>;
export function copyModel(from: string, to: string): Promise<void>;
export function moveModel(from: string, to: string): Promise<void>;
export function onModelsChange(callback: (event: { type: 'change'; names: string[] }) => void): Promise<() => void>;
export interface FileInfo extends ModelInfo {
  format: 'modelkeep';
  tensors: Array<{ name: string; dtype: DType; shape: number[]; bytes: number }>;
}
/** What a PyTorch or safetensors file holds (fileInfo), without converting its values. */
export interface SourceFileInfo {
  format: 'torch-zip' | 'torch-legacy' | 'safetensors';
  /** 'state dict', "checkpoint['model_state_dict']", 'module torch.nn.modules.container.Sequential', ... */
  holds: string;
  /** The SPEC the file defines (a pickled nn.Sequential of known layers), else null. */
  architecture: string | null;
  architectureNote: string;
  moduleTree: string | null;
  layers: string[];
  /** Every global the pickle names, e.g. 'collections.OrderedDict'. */
  globals: string[];
  /** A checkpoint's entries that hold a state dict or module (load's `entry` picks one). */
  entries: string[];
  /** dtype as stored: 'float32', 'bfloat16', 'int64' (torch) or 'F16', 'I64' (safetensors). */
  tensors: Array<{ name: string; dtype: string; shape: number[] }>;
  metadata: Record<string, string>;
  bytes: number;
}
/**
 * What a file holds, without decoding the weights. A PyTorch or safetensors file needs the importer
 * module: 'not_ready' until `await ready({ importer: true })`.
 */
export function fileInfo(bytes: Uint8Array | ArrayBuffer, options?: { checkData?: boolean }): FileInfo | SourceFileInfo;
export function requestPersistence(): Promise<boolean>;
export function storageEstimate(): Promise<{ usage: number; quota: number } | null>;

// ---- Training (docs/API.md "Training") ----

/** A tensor argument: nested arrays, or { data, shape } (flat values, row-major). */
export type TensorInput =
  number[] | number[][] | number[][][] | { data: Float32Array | ArrayLike<number>; shape: number[] };

/**
 * An optimizer, loss or schedule: text ('adam(lr=0.01, betas=(0.9, 0.99))', 'cross_entropy(label_smoothing=0.1)',
 * 'step_lr(step_size=10, gamma=0.1)'; PyTorch's class names work too) or an object with the same keyword
 * names ({ type: 'adam', lr: 0.01, betas: [0.9, 0.99], weightDecay: 0 }; camelCase becomes snake_case).
 */
export type OptionSpec = string | { type: string; [option: string]: number | boolean | string | number[] | undefined };

export interface TrainerOptions {
  /** 'sgd(lr=…)', 'adam', 'adamw', 'rmsprop' and their options; default 'adam' (lr 1e-3). */
  optimizer?: OptionSpec;
  /** 'mse' (default), 'l1', 'smooth_l1', 'huber', 'cross_entropy', 'nll', 'bce_with_logits', 'bce'. */
  loss?: OptionSpec;
  /** 'step_lr', 'cosine_annealing_lr', 'linear_lr'; default none. */
  scheduler?: OptionSpec | null;
  /** A schedule step after every optimizer step instead of every epoch. */
  schedulerPerBatch?: boolean;
  /** > 0: clip_grad_norm_(max_norm, 2) before each step. Default 0: none. */
  maxGradNorm?: number;
  /** Dropout masks and shuffling (an integer in [0, 2^53)); default random. */
  seed?: number;
  /** fit's batch size (default 32); saved with the trainer. */
  batchSize?: number;
  /** fit: a new permutation each epoch (default true); saved with the trainer. */
  shuffle?: boolean;
}

/**
 * load(…, { training: true }) of a PyTorch general checkpoint: what the file does not say. The
 * optimizer's options and state, and the epoch, are the file's.
 */
export interface TorchCheckpointOptions extends Omit<TrainerOptions, 'loss'> {
  /** Required: the file holds no loss function ('invalid_argument' naming it otherwise). */
  loss: OptionSpec;
  /**
   * The optimizer's kind only ('adam', 'adamw', ...): needed for Adam and AdamW, which store the
   * same keys; a kind other than the file's is 'invalid_argument'.
   */
  optimizer?: OptionSpec;
  /** The model's SPEC (required unless the file defines the model, or assumeSequential). */
  architecture?: string;
  assumeSequential?: boolean;
  onProgress?: (p: Progress) => void;
}

export interface TrainerState {
  /** Epochs completed, the batches done of the current one, optimizer steps in all. */
  epoch: number;
  batch: number;
  steps: number;
  lr: number;
  training: boolean;
  /** The last step's loss; null before any. */
  lastLoss: number | null;
  /** The data set of the last fit (0: none) and its batches per epoch. */
  samples: number;
  batchesPerEpoch: number;
  /** The options, canonical text (they parse to the same options). */
  optimizer: string;
  loss: string;
  scheduler: string | null;
  schedulerPerBatch: boolean;
  maxGradNorm: number;
  seed: number;
  batchSize: number;
  shuffle: boolean;
  metadata: Record<string, string>;
}

export interface BatchLogs {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
}

export interface EpochLogs {
  epoch: number;
  loss: number;
  accuracy?: number | null;
  valLoss?: number;
  valAccuracy?: number | null;
}

export interface FitOptions {
  /** Epochs more to train (default 1); an epoch an abort interrupted is finished first and counts. */
  epochs?: number;
  /** The trainer's own (Trainer.create); given here, it must be the same. */
  batchSize?: number;
  shuffle?: boolean;
  /** The last fraction of the samples (before shuffling) held out for valLoss / valAccuracy. */
  validationSplit?: number;
  validationData?: [TensorInput, TensorInput];
  /** 'accuracy': each epoch's accuracy on the training data (and the validation data), in eval mode. */
  metrics?: Array<'accuracy' | 'acc'>;
  onBatchEnd?: (logs: BatchLogs) => void | Promise<void>;
  onEpochEnd?: (logs: EpochLogs) => void | Promise<void>;
  /** Stops between batches: fit resolves with stopped: true; the trainer continues from there. */
  signal?: AbortSignal;
  /** Milliseconds of work between yields to the event loop (a macrotask); default 16. */
  yieldEvery?: number;
}

export interface History {
  /** The epochs completed by this fit. */
  epoch: number[];
  history: { loss: number[]; accuracy?: Array<number | null>; valLoss?: number[]; valAccuracy?: Array<number | null> };
  stopped: boolean;
}

export interface Evaluation {
  loss: number;
  /** null for the regression losses. */
  accuracy: number | null;
}

/** A Model being trained (PyTorch's loop: core/trainer.hpp); it lives in the importer module. */
export class Trainer {
  /**
   * A trainer for `model` (float32 weights: 'needs_f32' otherwise). Loads the importer module once; a
   * model of the core module moves there (lossless; the same Model object keeps working).
   * Bad options: 'invalid_hyperparameter'.
   */
  static create(model: Model, options?: TrainerOptions): Promise<Trainer>;
  /** A trainer resumed from a checkpoint: load(source, { training: true }). */
  static load(source: Source, options?: { onProgress?: (p: Progress) => void }): Promise<Trainer>;
  /** A trainer continuing a PyTorch general checkpoint (.pt): load(source, { training: true, ...options }). */
  static load(source: Source, options: TorchCheckpointOptions): Promise<Trainer>;
  /** A trainer resumed from a checkpoint's bytes. */
  static fromBytes(bytes: Uint8Array | ArrayBuffer): Promise<Trainer>;
  /** The Model being trained: its weights are the trained ones after every step. */
  readonly model: Model;
  state(): TrainerState;
  zeroGrad(): void;
  /** The recorded forward (train or eval mode, per `training`). */
  forward(input: TensorInput): Output;
  forward(input: Float32Array | ArrayLike<number>, shape: number[]): Output;
  /** The loss of the last forward: class indices (cross_entropy, nll) or values. */
  loss(target: TensorInput): number;
  loss(target: Float32Array | ArrayLike<number>, shape: number[]): number;
  backward(): void;
  step(): void;
  /** A per-epoch schedule step and epoch + 1, for a hand-written loop. */
  endEpoch(): void;
  /** zeroGrad, forward, loss, backward, step → the loss. */
  trainBatch(
    x: TensorInput | Float32Array,
    target: TensorInput | Float32Array,
    shapes?: { xShape?: number[]; targetShape?: number[] },
  ): number;
  train(): void;
  eval(): void;
  readonly training: boolean;
  lr: number;
  readonly epoch: number;
  readonly steps: number;
  /** Saved in the checkpoint. */
  metadata: Record<string, string>;
  fit(x: TensorInput, y: TensorInput, options?: FitOptions): Promise<History>;
  evaluate(x: TensorInput, y: TensorInput): Evaluation;
  /**
   * The checkpoint as .mkp bytes (the model plus its TRAINING section); format 'pt': a PyTorch
   * general checkpoint (metadata: its 'loss' only).
   */
  toBytes(options?: { metadata?: Record<string, string>; format?: 'mkp' | 'pt' }): Uint8Array;
  readonly disposed: boolean;
  /** Frees the trainer; a model that load() made for it is disposed too, one given to create() is not. */
  dispose(): void;
  [Symbol.dispose](): void;
}

/** In a Web Worker (or Node's worker_threads, scope: parentPort): serves one trainer to the page. */
export function serveTrainer(scope?: unknown): void;

/** The page's side of serveTrainer: each call rejects with the worker's ModelError. */
export interface RemoteTrainer {
  /** A model from a SPEC (modelSeed: its initialisation), bytes or a URL, and a trainer for it. */
  create(
    options: ({ spec: string; modelSeed?: number } | { bytes: Uint8Array | ArrayBuffer } | { url: string }) &
      TrainerOptions,
  ): Promise<TrainerState>;
  /** A trainer resumed from a checkpoint (a PyTorch general checkpoint: with its options). */
  load(
    source: string | Uint8Array | ArrayBuffer,
    options?: Omit<TorchCheckpointOptions, 'onProgress'>,
  ): Promise<TrainerState>;
  /** Typed arrays in { data, shape } tensors are transferred (detached here). */
  fit(x: TensorInput, y: TensorInput, options?: FitOptions): Promise<History>;
  evaluate(x: TensorInput, y: TensorInput): Promise<Evaluation>;
  predict(input: TensorInput): Promise<Output>;
  predict(input: Float32Array | ArrayLike<number>, shape: number[]): Promise<Output>;
  stateDict(): Promise<StateDict>;
  save(url: string, options?: SaveOptions): Promise<ModelInfo>;
  toBytes(options?: { metadata?: Record<string, string> }): Promise<Uint8Array>;
  state(): Promise<TrainerState>;
  setMetadata(metadata: Record<string, string>): Promise<Record<string, string>>;
  setLr(lr: number): Promise<number>;
  dispose(): Promise<void>;
}

export function connectTrainer(
  worker: Worker | { postMessage(message: unknown, transfer?: unknown[]): void },
): RemoteTrainer;
