// wasm_asked.mjs — for the tests of which WebAssembly modules load (lean.test.mjs,
// reader.test.mjs): records every .wasm the registered platform is asked for, in order.
import { currentPlatform } from '../../web/src/runtime.js';

/** The list the platform's moduleOptions appends each .wasm it is asked for to, from now on. */
export function recordWasmAsked() {
  const asked = [];
  const platform = currentPlatform();
  const moduleOptions = platform.moduleOptions;
  platform.moduleOptions = (wasm, isDefault) => {
    asked.push(String(wasm));
    return moduleOptions.call(platform, wasm, isDefault);
  };
  return asked;
}
