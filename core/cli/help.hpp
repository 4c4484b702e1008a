// help.hpp — the CLI's usage texts: one per command, the SPEC syntax, and
// the global overview. Kept apart from main.cpp so the logic stays readable.
#pragma once

namespace modelkeep {
namespace cli_help {

constexpr const char* version = "0.1.0";

constexpr const char* dtypes =
    "DTYPE is how weights (tensors of rank >= 2) are stored; biases, norm parameters and\n"
    R"~(running statistics always stay f32. Values are always float32 in memory.
  f32   exact (the default)
  f16   IEEE half precision: relative error <= 2^-11; |x| > 65504 becomes infinite
  bf16  bfloat16: relative error <= 2^-8
  int8  symmetric, one f32 scale per row: absolute error <= max|row| / 254; no NaN or infinity
)~";

constexpr const char* spec = R"~(SPEC, the architecture (the layers of an nn.Sequential, in order):
  SPEC  := LAYER ("," LAYER)*
  LAYER := [NAME "="] KIND ["(" [ARG ("," ARG)*] ")"]
  ARG   := VALUE | KEY "=" VALUE
  A NAME is segments of [A-Za-z0-9_] joined by '.'; a layer without one is named by its
  position ("0", "1", ...), as in nn.Sequential. An empty NAME ("=Linear(1,1)") is the
  root: a model that is that one layer, its tensors named "weight", "bias" without a
  prefix (a bare nn.Linear's state dict); it must be the only layer. Whitespace between tokens is ignored;
  quote the whole SPEC for the shell. Booleans are true/false (or True/False, 1/0).
  Layers and their arguments (positional order, then keywords; defaults as in PyTorch):
    Linear(in_features, out_features, bias=true)
    LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=true, bias=true)
    BatchNorm1d(num_features, eps=1e-5, affine=true, track_running_stats=true)
    LeakyReLU(negative_slope=0.01)   GELU(approximate=none|tanh)   Dropout(p=0.5)
    Flatten(start_dim=1, end_dim=-1)
    Softmax(dim=-1)   LogSoftmax(dim=-1)   (over the last dim only)
    ReLU   Sigmoid   Tanh   SiLU   Identity   (no arguments)
  Examples:
    'fc1=Linear(3,5)'
    'Linear(784,512),ReLU,Dropout(0.1),LayerNorm(512),GELU(tanh),Linear(512,10)'
    'enc.fc=Linear(4,8,bias=false), enc.act=LeakyReLU(0.2), head=Linear(8,2), Softmax'
)~";

// Follows "modelkeep VERSION - ...".
constexpr const char* global = R"~(
Usage:
  modelkeep init SPEC OUT.mkp [--seed N] [--dtype DTYPE] [--meta KEY=VALUE]... [--state-dict]
  modelkeep inspect FILE [--json] [--entry NAME]
  modelkeep predict FILE [--arch SPEC [--prefix P] | --assume-sequential] [--entry NAME] --input JSON|@PATH|-
  modelkeep convert IN OUT [--arch SPEC [--prefix P] | --assume-sequential] [--entry NAME] [--dtype DTYPE] [--state-dict]
                    [--meta KEY=VALUE]...
  modelkeep train MODEL --data FILE --loss LOSS [--optimizer OPT] --epochs N --out OUT [options]
  modelkeep help [COMMAND|spec]
  modelkeep --version

Commands:
  init      build a model from a SPEC (PyTorch's default initialisation) and write it
  inspect   show what a file holds: format, layers, tensors, metadata, integrity check
            (for PyTorch files also the pickle's globals and the module tree)
  predict   run a model on a JSON array and print its output as JSON
  convert   turn any readable file into a .mkp model or state dict, or a state dict into
            .safetensors or .pt (chosen by OUT's extension)
  train     train a model on JSON or CSV data (PyTorch's losses, optimizers, schedules)
            and write a checkpoint that resumes exactly (.mkp) or a PyTorch one (.pt)

FILE and IN may be a modelkeep .mkp, a PyTorch torch.save file (zip or pre-1.6 legacy:
state dicts, checkpoints, whole modules) or a safetensors file; the format is detected from
the bytes. Nothing in a PyTorch file is ever executed: its pickle is read by an allowlist,
and anything else (posix.system, eval, TorchScript, ...) is refused with its name.
  help      show this help, a command's ('modelkeep help init') or the SPEC syntax ('help spec')

Every command also takes -h / --help. 'modelkeep --version' prints the version.

)~";

constexpr const char* global_tail = R"~(
Exit status: 0 on success; 1 when a file, SPEC or input is bad, a file cannot be read or
written, or an inspected file fails its integrity check; 2 on a usage error (unknown command
or option, missing or extra argument, bad option value). Errors go to standard error as
"modelkeep: CODE: MESSAGE", CODE being a stable name such as io_error, checksum_mismatch,
invalid_spec, invalid_input or shape_mismatch ("usage" for usage errors).

Examples:
  modelkeep init 'fc1=Linear(3,5)' tiny.mkp --seed 42 --meta author=me
  modelkeep inspect tiny.mkp
  modelkeep predict tiny.mkp --input '[[1, 2, 3]]'
  modelkeep convert tiny.mkp tiny-f16.mkp --dtype f16
  modelkeep predict model.pt --assume-sequential --input '[[1, 2, 3]]'
  modelkeep convert weights.safetensors mlp.mkp --arch 'Linear(784,64),ReLU,Linear(64,10)'
  modelkeep convert tiny.mkp tiny.safetensors
)~";

constexpr const char* init =
    "Usage: modelkeep init SPEC OUT.mkp [--seed N] [--dtype DTYPE] [--meta KEY=VALUE]... [--state-dict]\n"
    R"~(
Builds the model SPEC describes, initialised as PyTorch initialises it by default (Linear
weight and bias uniform in +-1/sqrt(in_features); norm weights 1, biases 0, running variance 1)
from a seeded generator, and writes it to OUT.mkp as a full model (architecture + tensors).
The same arguments always give the same file, read back and checked before it replaces an
existing OUT.mkp (a failure leaves OUT.mkp as it was). Prints one line saying what was written.

Options:
  --seed N            seed of the initialisation, 0 to 18446744073709551615 (default 0)
  --dtype DTYPE       storage of the weights: f32 (default), f16, bf16 or int8
  --meta KEY=VALUE    a metadata entry (repeatable; the last value given for a key wins)
  --state-dict        write only the tensors (a state dict), without the architecture
  -h, --help          show this help

)~";

constexpr const char* init_tail = R"~(
Examples:
  modelkeep init 'fc1=Linear(3,5)' tiny.mkp
  modelkeep init 'Linear(4,16),ReLU,Linear(16,2)' mlp.mkp --seed 7 --dtype f16 --meta task=demo
)~";

constexpr const char* inspect = R"~(Usage: modelkeep inspect FILE [--json] [--entry NAME]

For a PyTorch or safetensors file: the format found, what it holds (state dict, checkpoint
entry — and, for a checkpoint with several, the entries that hold a state dict or module, of
which --entry NAME describes another — pickled module), the architecture the file defines (a pickled nn.Sequential of known
layers) or why it defines none, the module tree, every global the pickle names, every tensor
(name, stored dtype, shape), the metadata (a checkpoint's scalars such as epoch and loss), and
the integrity check (every tensor read and converted). --json prints one object with the
fields format, holds, entries, architecture, architecture_note, module_tree, globals, tensors
[{name, dtype, shape}], metadata and integrity. For a .mkp file:

Shows what a .mkp file holds: format version, kind (full model or state dict), data
alignment, header and file sizes, the architecture (the canonical SPEC of the whole model and
of each layer), every tensor (name, dtype, shape, stored bytes, offset), the parameter count,
the metadata, the training section of a checkpoint that `train` wrote (optimizer, loss,
schedule, counters, batches; read and checked whole, as --resume reads it), and the
integrity check (header and data CRC-32, padding, int8 scales). When the header is readable but the check fails, everything else is still shown, the failure
is reported on standard error too, and the exit status is 1.

Options:
  --json       print one JSON object instead, with the fields: version ("1.0"), kind
               ("model" or "state_dict"), align, header_bytes, file_bytes, param_count,
               architecture (the SPEC; null for a state dict), layers [{name, kind, spec}],
               tensors [{name, dtype, shape, bytes, offset}], training (null, or {optimizer,
               loss, scheduler, scheduler_per_batch, epoch, batch, steps, batch_size,
               shuffle, seed, max_grad_norm, training, metadata}), metadata {KEY: VALUE},
               integrity {ok, code, message}
  -h, --help   show this help

Examples:
  modelkeep inspect tiny.mkp
  modelkeep inspect tiny.mkp --json
)~";

constexpr const char* predict =
    R"~(Usage: modelkeep predict FILE [--arch SPEC [--prefix P] | --assume-sequential] [--entry NAME] --input JSON|@PATH|-

Runs the model in FILE in inference mode (Dropout is the identity, BatchNorm1d uses its
running statistics) on one input and prints {"shape": [...], "data": [...]}: the output's
shape and its values in row-major order, each the shortest decimal that reads back as the
same float32 (null for NaN or infinity).

The input is a rectangular nested JSON array of numbers, rank 1 to 8, used as given:
'[[1, 2, 3]]' has shape (1, 3) and '[1, 2, 3]' shape (3,) (Linear takes (*, in_features)).
Numbers are rounded to float32; NaN, Infinity and empty arrays are not accepted.

Options:
  --input JSON          the input array itself
  --input @PATH         read the input from the file PATH
  --input -             read the input from standard input
  --arch SPEC           build this architecture and load FILE's tensors into it (strict:
                        every key and shape must match); for state dicts, checkpoints and
                        safetensors files, which hold weights but not the layers that use them;
                        '=Linear(1,1)' is a model that is one layer (keys weight, bias)
  --prefix P            with --arch: only FILE's keys under P are the model's, P taken off
                        (module. from DataParallel, model. from Lightning, _orig_mod.)
  --entry NAME          a checkpoint's entry that holds the model (state_dict, ema, ...;
                        inspect lists them); by default the first of model_state_dict,
                        state_dict, model, net, module, else the first that holds one.
                        For a zip that holds torch files (Stable-Baselines3's model.zip):
                        the member to read (policy.pth); the error lists them
  --assume-sequential   for a pickled custom nn.Module (torch.save(model)): run its leaf
                        modules in registration order. The file has no forward(), so only use
                        this when forward() does exactly that
  -h, --help            show this help

A .mkp model and a pickled nn.Sequential of known layers run as they are; any other file
needs --arch or --assume-sequential (needs_architecture says so and shows the module tree).

Examples:
  modelkeep predict tiny.mkp --input '[[1, 2, 3], [4, 5, 6]]'
  echo '[[1, 2, 3]]' | modelkeep predict tiny.mkp --input -
  modelkeep predict weights.pt --arch 'fc1=Linear(3,5)' --input '[[1, 2, 3]]'
)~";

constexpr const char* convert =
    "Usage: modelkeep convert IN OUT [--arch SPEC [--prefix P] | --assume-sequential] [--entry NAME] [--dtype DTYPE] "
    "[--state-dict]\n"
    "                         [--meta KEY=VALUE]...\n"
    R"~(
Reads IN (.mkp, PyTorch .pt or safetensors), verifies all of it, and writes OUT in the format
its extension names, with weights stored as DTYPE (f32 unless --dtype says otherwise):
  *.mkp (or any other)  a full model when the architecture is known (IN is a .mkp model or a
                        pickled nn.Sequential, or --arch / --assume-sequential says it),
                        otherwise a state dict
  *.safetensors         a state dict (f32, f16 or bf16; num_batches_tracked as I64)
  *.pt, *.pth           a state dict that torch.load(path, weights_only=True) loads, with
                        PyTorch's key names (f32, f16 or bf16)
The metadata is kept (a checkpoint's scalars such as epoch become metadata); --meta adds
entries or replaces existing ones. The new file is built in memory and read back with
modelkeep's own reader for its format (names, shapes, float32 values and metadata compared)
before it replaces OUT: on any failure OUT is left as it was. IN and OUT may be the same file.
Names and keys of a .mkp file hold no control characters (bad_name); metadata values may hold
newlines and tabs. Names and strings from files are printed escaped (\x1b, \u009b).

Options:
  --arch SPEC           the architecture to pair IN's tensors with (strict load)
  --prefix P            with --arch: only IN's keys under P are the model's, P taken off
  --entry NAME          a checkpoint's entry that holds the model (inspect lists them), or the
                        torch file to read inside a zip that holds several (policy.pth)
  --assume-sequential   IN is a pickled custom module whose forward() runs its leaves in order
  --dtype DTYPE         storage of the weights: f32 (default), f16, bf16 or int8 (.mkp only)
  --state-dict          write only the tensors, without the architecture
  --meta KEY=VALUE      add or replace a metadata entry (repeatable)
  -h, --help            show this help

)~";

constexpr const char* convert_tail = R"~(
A narrower dtype loses precision for good: converting back to f32 does not restore it.

Examples:
  modelkeep convert tiny.mkp tiny-int8.mkp --dtype int8
  modelkeep convert tiny.mkp weights.mkp --state-dict --meta source=tiny.mkp
  modelkeep convert model.pt model.mkp --assume-sequential
  modelkeep convert tiny.mkp tiny.pt
)~";

constexpr const char* train =
    R"~(Usage: modelkeep train MODEL --data FILE --loss LOSS [--optimizer OPT] --epochs N --out OUT
                       [--batch-size B] [--shuffle true|false] [--seed N] [--scheduler SCHED
                       [--scheduler-per-batch]] [--max-grad-norm X] [--target NAME]
                       [--resume CKPT] [--arch SPEC [--prefix P] | --assume-sequential]
                       [--entry NAME] [--meta KEY=VALUE]...

Trains MODEL with PyTorch's loop (zero_grad, forward in train() mode, loss, backward,
clip_grad_norm_, optimizer.step(), scheduler.step()) for N epochs of FILE's samples and
writes OUT: a .mkp model with a training section (optimizer state, schedule, counters,
random generators), which --resume continues bit-identically, or a .pt PyTorch general
checkpoint {'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}. Progress goes to
standard error, one line per epoch (the mean loss of its batches; for the class losses the
accuracy over FILE in eval() mode).

MODEL is a model file when a file of that name exists (.mkp, or a PyTorch / safetensors
file with --arch / --assume-sequential, as for predict), else a SPEC ('modelkeep help
spec'), initialised as PyTorch does from --seed. Models with f16, bf16 or int8 weights
cannot be trained (needs_f32): convert them to f32 first.

Options:
  --data FILE           JSON {"x": [[...], ...], "y": [...] or [[...], ...]}, or CSV: one
                        sample per row, a header row optional, the target the last column
  --target NAME         CSV: the target column, by its header name
  --loss LOSS           mse, l1, smooth_l1(beta=1), huber(delta=1), cross_entropy(
                        label_smoothing=0, ignore_index=-100, weight=[...]), nll,
                        bce_with_logits(pos_weight=[...]), bce; each takes reduction=
                        mean|sum|none; PyTorch's class names work too (CrossEntropyLoss).
                        Class losses take class indices as targets
  --optimizer OPT       adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                        amsgrad=false) (the default), adamw(...), sgd(lr=0.1, momentum=0.9,
                        dampening=0, nesterov=false, weight_decay=0), rmsprop(lr=0.01,
                        alpha=0.99, momentum=0, centered=false); maximize=true for any
  --scheduler SCHED     step_lr(step_size=10, gamma=0.1), cosine_annealing_lr(T_max=100,
                        eta_min=0), linear_lr(start_factor=0.333, end_factor=1,
                        total_iters=5); stepped per epoch, or per batch with
                        --scheduler-per-batch
  --max-grad-norm X     clip_grad_norm_(max_norm=X) before each step
  --epochs N            N more epochs (a checkpoint taken mid-epoch finishes its epoch first)
  --batch-size B        samples per step (default 32); the last batch may be smaller
  --shuffle true|false  a new order every epoch (default true)
  --seed N              the initialisation, the shuffling and the dropout masks (default 0)
  --resume CKPT         continue a .mkp checkpoint that train wrote: its optimizer, options,
                        counters and generators win over the options given (a warning says
                        which are ignored); MODEL must have its architecture
  --out OUT             .mkp (modelkeep checkpoint) or .pt (PyTorch general checkpoint);
                        written atomically, after it reads back
  --meta KEY=VALUE      metadata of the .mkp file (repeatable)
  -h, --help            show this help

Examples:
  modelkeep train 'Linear(2,16),ReLU,Linear(16,2)' --data moons.csv --loss cross_entropy \
      --optimizer 'adam(lr=0.01)' --epochs 20 --seed 1 --out moons.mkp
  modelkeep train 'Linear(2,16),ReLU,Linear(16,2)' --data moons.csv --epochs 10 \
      --resume moons.mkp --out moons-30.mkp
  modelkeep inspect moons-30.mkp
)~";

}  // namespace cli_help
}  // namespace modelkeep
