// errors.js — the one error type the package throws. `code` is a stable
// snake_case string: the C++ core's codes (docs/API.md) plus the few that only
// exist in JavaScript (storage, network, arguments), listed in docs/API.md and
// typed as ErrorCode in web/index.d.ts (tests/js/codes.test.mjs keeps them in step).

export class ModelError extends Error {
  /**
   * @param {import('../index.d.ts').ErrorCode} code  stable machine-readable code, e.g. 'checksum_mismatch'
   * @param {string} message human-readable, names the culprit
   * @param {object} [details] extra data, e.g. { needed, available } for quota_exceeded
   */
  constructor(code, message, details = undefined) {
    super(message);
    this.name = 'ModelError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

/** Throws a ModelError for an `{ ok: false, code, message }` result from the wasm side. */
export function check(result) {
  if (result && result.ok === false) throw new ModelError(result.code, result.message);
  return result;
}
