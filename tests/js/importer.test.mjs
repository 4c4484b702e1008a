// Where the importer's .wasm comes from (runtime.js): ready({ importerWasm }) is remembered until
// the importer is first loaded; a load that fails is forgotten, names the .wasm and the fix, and
// leaves the core working; the next call tries again. Its own process: nothing has loaded the
// importer before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ready, load, nn, ModelError } from '../../web/src/node.js';
import { loadedModules } from '../../web/src/runtime.js';

const pt = readFileSync(new URL('../torch/files/tutorial_state.pt', import.meta.url));
const importerWasm = readFileSync(new URL('../../web/dist-importer/modelkeep_wasm.wasm', import.meta.url));

test('a bad importerWasm fails the first .pt with network_error, and the core lives on', async () => {
  await ready({ importerWasm: new URL('../../web/dist-importer/missing.wasm', import.meta.url) });
  assert.deepEqual(loadedModules(), ['core']);
  await assert.rejects(load(pt, { architecture: 'fc1=Linear(3,5)' }), (e) => {
    assert.ok(e instanceof ModelError);
    assert.equal(e.code, 'network_error');
    assert.match(e.message, /missing\.wasm/);
    assert.match(e.message, /importerWasm/);
    return true;
  });
  assert.deepEqual(loadedModules(), ['core']);
  const m = nn.sequential(nn.linear(3, 2), { seed: 1 });
  assert.equal(m.forward([[1, 2, 3]]).shape.join(), '1,2');
  m.dispose();
});

test('then importerWasm as bytes: the failed load was forgotten, the next one uses them', async () => {
  await ready({ importerWasm });
  const m = await load(pt, { architecture: 'fc1=Linear(3,5)' });
  assert.deepEqual(loadedModules(), ['core', 'importer']);
  assert.equal(m.forward([[1, 2, 3]]).shape.join(), '1,5');
  m.dispose();
  // Once loaded, a later importerWasm changes nothing.
  await ready({ importerWasm: new URL('file:///nowhere.wasm'), importer: true });
  (await load(pt, { architecture: 'fc1=Linear(3,5)' })).dispose();
});
