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
   * Also load the importer module now (a second .wasm, ~130 KB gzipped), so that the synchronous
   * calls that need it work: fileInfo, Model.fromBytes and loadStateDict on a .pt or .safetensors
   * file, toBytes({ format: 'pt' | 'safetensors' }). They throw 'not_ready' until then. The async
   * load() and save() fetch it themselves on first use; .mkp files never need it.
   */
  importer?: boolean;
}

/**
 * Loads and instantiates the core WebAssembly module, once (like tf.ready()): later calls resolve
 * at once; a load that failed is tried again by the next call. Await it before the synchronous API
 * (nn.sequential, Model.fromSpec, Model.fromBytes, fileInfo, ...), which throws ModelError
 * 'not_ready' until it has resolved; every async function (load, save, listModels, ...) awaits it.
 * The importer (PyTorch / safetensors) is a second module, loaded on first use or by
 * `ready({ importer: true })`.
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
  | 'needs_f32';

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

export interface SaveOptions {
  dtype?: DType;
  metadata?: Record<string, string>;
  onProgress?: (p: Progress) => void;
}

/** Into a store (indexeddb://name): always a .mkp, whatever the name ends with. */
export function save(
  model: Model | Uint8Array,
  url: `indexeddb://${string}`,
  options?: SaveOptions,
): Promise<ModelInfo>;
/** A name ending .pt, .pth or .safetensors exports the state dict in that format. */
export function save(
  model: Model,
  url: `${string}.pt` | `${string}.pth` | `${string}.safetensors`,
  options?: SaveOptions,
): Promise<ExportInfo>;
/** indexeddb://name, downloads://name, or (Node) a path / file:// URL. */
export function save(
  model: Model | Uint8Array,
  url: string | URL,
  options?: SaveOptions,
): Promise<ModelInfo | ExportInfo>;
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
