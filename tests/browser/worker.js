// worker.js — a module worker that uses the package on its own: builds a model, saves it to
// IndexedDB, loads it back and posts the prediction (and bytes) to the page; then loads the
// importer module and sends the model through a .pt and back.
import { ready, nn, save, load } from '/web/src/index.js';

self.onmessage = async (event) => {
  const { seed, name, input } = event.data;
  try {
    await ready();
    const model = nn.sequential(nn.linear(3, 5), nn.relu(), nn.linear(5, 2), { seed });
    const info = await save(model, `indexeddb://${name}`, { metadata: { from: 'worker' } });
    const loaded = await load(`indexeddb://${name}`);
    const y = loaded.forward(input);
    const bytes = model.toBytes();
    const loadedBytes = loaded.toBytes();
    // The importer module, fetched by the worker itself: the model to .pt and back.
    await ready({ importer: true });
    const fromPt = await load(model.toBytes({ format: 'pt' }), { architecture: model.architecture });
    const yPt = fromPt.forward(input);
    fromPt.dispose();
    model.dispose();
    loaded.dispose();
    self.postMessage({
      ok: true,
      shape: y.shape,
      data: Array.from(y.data),
      fromPt: Array.from(yPt.data),
      bytes: Array.from(bytes),
      loadedBytes: Array.from(loadedBytes),
      info,
    });
  } catch (err) {
    self.postMessage({ ok: false, code: err?.code, message: String(err?.message ?? err) });
  }
};
self.postMessage({ ready: true });
