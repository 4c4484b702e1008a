// Old against new kernels in one Node process, interleaved: two copies of the
// package's web/ folder (src + dist), the same weights and inputs, forward
// timed round by round, one build after the other, medians. For a kernel
// change, where the run-to-run noise of this VM exceeds the difference.
//   cp -r web /tmp/old-web   (before the change; after it, rebuild web/dist)
//   node tests/bench/kernel_ab.mjs /tmp/old-web web [--rounds=9] [--dtypes=f32,int8] [--batches=1]
// (--batches=1: the batch-1 cases only; --batches=32,64: the others)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [oldDir, newDir] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!oldDir || !newDir) {
  console.error('usage: node tests/bench/kernel_ab.mjs OLD_WEB_DIR NEW_WEB_DIR [--rounds=N] [--dtypes=f32,...]');
  process.exit(2);
}
const rounds = Number((process.argv.find((a) => a.startsWith('--rounds=')) ?? '--rounds=9').slice(9));
const dtypes = (process.argv.find((a) => a.startsWith('--dtypes=')) ?? '--dtypes=f32,f16,bf16,int8')
  .slice(9)
  .split(',');
const batchArg = process.argv.find((a) => a.startsWith('--batches='));
const onlyBatches = batchArg ? batchArg.slice(10).split(',').map(Number) : null;
const load = async (dir) => {
  const mk = await import(pathToFileURL(resolve(dir, 'src/node.js')).href);
  await mk.ready();
  return mk;
};
const builds = { old: await load(oldDir), new: await load(newDir) };

const cases = [
  { name: 'MNIST 784-512-512-10', sizes: [784, 512, 512, 10], batches: [1, 64] },
  { name: '1024-4096-4096-1024', sizes: [1024, 4096, 4096, 1024], batches: [1, 32] },
];
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;

for (const c of cases) {
  const spec = [];
  const sd = {};
  let flops = 0;
  for (let i = 0; i + 1 < c.sizes.length; i++) {
    const [inF, out] = [c.sizes[i], c.sizes[i + 1]];
    spec.push(`${2 * i}=Linear(${inF},${out})`);
    if (i + 2 < c.sizes.length) spec.push(`${2 * i + 1}=ReLU`);
    const w = new Float32Array(inF * out).map(() => rand() / Math.sqrt(inF));
    sd[`${2 * i}.weight`] = { shape: [out, inF], data: w };
    sd[`${2 * i}.bias`] = { shape: [out], data: new Float32Array(out).map(() => rand() * 0.1) };
    flops += 2 * inF * out;
  }
  for (const dtype of dtypes) {
    const models = {};
    for (const [k, mk] of Object.entries(builds)) {
      models[k] = mk.Model.fromSpec(spec.join(','), { seed: 1 });
      models[k].loadStateDict(sd);
      if (dtype !== 'f32') models[k].setWeightDtype(dtype);
    }
    for (const batch of c.batches) {
      if (onlyBatches && !onlyBatches.includes(batch)) continue;
      const x = new Float32Array(batch * c.sizes[0]).map(() => rand());
      const shape = [batch, c.sizes[0]];
      const a = models.old.forward(x, shape).data,
        b = models.new.forward(x, shape).data;
      let diff = 0,
        scale = 1;
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(a[i]));
      }
      if (diff > 1e-4 * scale) throw new Error(`${c.name} ${dtype} b${batch}: old and new differ by ${diff}`);
      const times = { old: [], new: [] };
      const reps = Math.max(1, Math.round(2e8 / (flops * batch)));
      for (let r = 0; r < rounds; r++)
        for (const k of r % 2 ? ['new', 'old'] : ['old', 'new']) {
          const t0 = performance.now();
          for (let i = 0; i < reps; i++) models[k].forward(x, shape);
          times[k].push((performance.now() - t0) / reps);
        }
      const med = (v) => v.slice().sort((p, q) => p - q)[v.length >> 1];
      const [o, n] = [med(times.old), med(times.new)];
      const gf = (ms) => ((flops * batch) / ms / 1e6).toFixed(1);
      console.log(
        `${c.name} ${dtype} batch ${batch}: old ${o.toFixed(4)} ms (${gf(o)} GFLOP/s), new ${n.toFixed(4)} ms ` +
          `(${gf(n)} GFLOP/s), old/new ${(o / n).toFixed(2)}x`,
      );
    }
    for (const m of Object.values(models)) m.dispose();
  }
}
