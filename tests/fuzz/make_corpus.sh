#!/usr/bin/env bash
# Seeds the fuzz corpora with valid files written by the CLI: both kinds,
# every dtype, every layer kind; for the import target, the PyTorch and
# safetensors fixtures (tests/torch/files), the CLI's own exports and the attack shapes
# (make_attack_seeds.py).
# Usage: make_corpus.sh CLI OUT_DIR
set -euo pipefail
cli=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/reader" "$out/spec" "$out/import" "$out/pickle"
specs=(
  "fc1=Linear(3,5)"
  "Linear(4,6),GELU(tanh),LayerNorm(6),BatchNorm1d(6),Dropout(0.2),Linear(6,3,bias=false),LogSoftmax"
  "a.b=Linear(2,3),LeakyReLU(0.2),Sigmoid,Tanh,SiLU,Softmax,Identity,Flatten(0,-1),LayerNorm(3,elementwise_affine=false)"
  "BatchNorm1d(4,affine=false,track_running_stats=false),ReLU"
)
i=0
for spec in "${specs[@]}"; do
  printf '%s' "$spec" > "$out/spec/$i.txt"
  for dtype in f32 f16 bf16 int8; do
    "$cli" init "$spec" "$out/reader/model_${i}_$dtype.mkp" --dtype "$dtype" --meta note=fuzz >/dev/null
    "$cli" init "$spec" "$out/reader/state_${i}_$dtype.mkp" --dtype "$dtype" --state-dict >/dev/null
  done
  i=$((i + 1))
done
# Checkpoints: the TRAINING section (SGD with momentum, Adam with a schedule), and PyTorch's
# general checkpoint for the import target.
printf '0.1,0.2,0\n0.3,-0.4,1\n-0.5,0.6,0\n0.7,0.8,1\n-0.9,-1,0\n0.2,-0.3,1\n' > "$out/train.csv"
"$cli" train "Linear(2,3),Tanh,Linear(3,2)" --data "$out/train.csv" --loss cross_entropy --epochs 2 \
  --batch-size 2 --optimizer "sgd(lr=0.1, momentum=0.9)" --out "$out/reader/ckpt_sgd.mkp" >/dev/null 2>&1
"$cli" train "Linear(2,3),BatchNorm1d(3),Dropout(0.2),Linear(3,2)" --data "$out/train.csv" --loss cross_entropy \
  --epochs 1 --batch-size 2 --scheduler "step_lr(step_size=1)" --out "$out/reader/ckpt_adam.mkp" >/dev/null 2>&1
cp "$here"/../torch/files/* "$out/import/"
"$cli" train "Linear(2,3),Tanh,Linear(3,2)" --data "$out/train.csv" --loss cross_entropy --epochs 1 \
  --batch-size 2 --out "$out/import/ckpt_adam.pt" >/dev/null 2>&1
rm "$out/train.csv"
for f in "$out"/reader/model_*_f32.mkp; do
  "$cli" convert "$f" "$out/import/$(basename "$f" .mkp).safetensors" >/dev/null
  "$cli" convert "$f" "$out/import/$(basename "$f" .mkp).pt" >/dev/null
done
# The attack shapes (module DAG, stride-0 and shared-storage views, floods, zip bombs, absurd
# shapes, lying legacy storages), hand-assembled: into the import corpus, and their pickles below.
python3 "$here/make_attack_seeds.py" "$out/import" "$out/pickle"
echo "import corpus: $(ls "$out/import" | wc -l) files"
# The pickles inside the torch fixtures (data.pkl of each zip), for fuzz_pickle.
python3 - "$out/import" "$out/pickle" <<'PY'
import os, sys, zipfile, zlib
src, dst = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    try:
        with zipfile.ZipFile(os.path.join(src, name)) as z:
            for entry in z.namelist():
                if entry.endswith("/data.pkl"):
                    with open(os.path.join(dst, name + ".pkl"), "wb") as f:
                        f.write(z.read(entry))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, zlib.error):
        pass
PY
echo "pickle corpus: $(ls "$out/pickle" | wc -l) files"
echo "corpus: $(ls "$out/reader" | wc -l) files, $(ls "$out/spec" | wc -l) specs in $out"
