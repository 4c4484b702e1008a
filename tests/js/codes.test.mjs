// The error codes, declared once in the core and repeated where users read them: core/status.hpp's
// MODELKEEP_CODES list == docs/API.md's "Error codes" table == web/index.d.ts's CoreErrorCode; the
// codes web/src throws that the core lacks ⊆ JsErrorCode == docs/API.md's "Errors" table; and no
// code in both sets. Each failure names the codes that differ. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

const read = (path) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** X(name) in the MODELKEEP_CODES X-macro: its lines end with a backslash; comments dropped. */
function coreCodes() {
  const lines = read('core/status.hpp').split('\n');
  const start = lines.findIndex((line) => line.startsWith('#define MODELKEEP_CODES(X)'));
  assert.ok(start >= 0, 'core/status.hpp has no #define MODELKEEP_CODES(X)');
  let end = start;
  while (lines[end].trimEnd().endsWith('\\')) end++;
  const body = lines
    .slice(start + 1, end + 1)
    .join('\n')
    .replace(/\/\*[\s\S]*?\*\//g, '');
  const codes = [...body.matchAll(/\bX\((\w+)\)/g)].map((m) => m[1]);
  assert.equal(codes[0], 'ok', 'MODELKEEP_CODES starts with X(ok)');
  return codes.slice(1);
}

/** The `code` column of the first table under a docs/API.md heading (up to the next heading). */
function apiTable(heading) {
  const text = read('docs/API.md');
  const start = text.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/API.md has no heading "${heading}"`);
  const section = text.slice(start + heading.length + 2).split(/\n#+ /)[0];
  return [...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
}

/** The string literals of `export type <name> = ... ;` in web/index.d.ts. */
function unionOf(name) {
  const match = read('web/index.d.ts').match(new RegExp(`export type ${name} =([^;]*);`));
  assert.ok(match, `web/index.d.ts declares no type ${name}`);
  return [...match[1].replace(/\/\/.*$/gm, '').matchAll(/'(\w+)'/g)].map((m) => m[1]);
}

/** The first argument of a call whose '(' is at `open`: up to its first top-level comma. */
function firstArgument(source, open) {
  let depth = 0;
  let quote = null;
  for (let i = open + 1; i < source.length; i++) {
    const c = source[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === '`') {
      quote = c;
    } else if ('([{'.includes(c)) {
      depth++;
    } else if (')]}'.includes(c)) {
      if (depth === 0) return source.slice(open + 1, i);
      depth--;
    } else if (c === ',' && depth === 0) {
      return source.slice(open + 1, i);
    }
  }
  throw new Error(`unclosed call at ${open}`);
}

/** Codes passed on as they come, not written in web/src: check() rethrows the core's own. */
const passedOn = ['result.code'];

/** Every code `new ModelError(...)` is given in web/src/*.js: literals (either side of a ?:). */
function thrownCodes() {
  const codes = new Map(); // code → 'file:line'
  const dir = new URL('../../web/src/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(new URL(file, dir), 'utf8');
    for (const m of source.matchAll(/new ModelError\(/g)) {
      const open = m.index + m[0].length - 1;
      const where = `web/src/${file}:${source.slice(0, open).split('\n').length}`;
      // A literal compared with (e.code === 'ENOENT') chooses the code; it is not one.
      const arg = firstArgument(source, open)
        .replace(/[!=]==?\s*(['"])[^'"]*\1/g, '')
        .trim();
      const literals = [...arg.matchAll(/(['"])(\w+)\1/g)].map((l) => l[2]);
      if (literals.length === 0) {
        assert.ok(passedOn.includes(arg), `${where}: new ModelError(${arg}, ...) names no code literal`);
      }
      for (const code of literals) if (!codes.has(code)) codes.set(code, where);
    }
  }
  return codes;
}

/** Fails naming what only one side has (and any code listed twice). */
function assertSameCodes(a, aName, b, bName) {
  for (const [list, name] of [
    [a, aName],
    [b, bName],
  ]) {
    const twice = list.filter((code, i) => list.indexOf(code) !== i);
    assert.deepEqual(twice, [], `${name} lists ${twice.join(', ')} more than once`);
  }
  const onlyA = a.filter((code) => !b.includes(code));
  const onlyB = b.filter((code) => !a.includes(code));
  assert.ok(
    onlyA.length === 0 && onlyB.length === 0,
    [
      onlyA.length ? `in ${aName} but not in ${bName}: ${onlyA.join(', ')}` : '',
      onlyB.length ? `in ${bName} but not in ${aName}: ${onlyB.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  );
}

test('the core codes: core/status.hpp == docs/API.md "Error codes" == CoreErrorCode', () => {
  const core = coreCodes();
  assert.ok(core.length > 40, `only ${core.length} codes parsed from core/status.hpp`);
  assertSameCodes(core, 'core/status.hpp', apiTable('## Error codes'), 'docs/API.md "Error codes"');
  assertSameCodes(core, 'core/status.hpp', unionOf('CoreErrorCode'), 'web/index.d.ts CoreErrorCode');
});

test('the JavaScript-only codes: JsErrorCode == docs/API.md "Errors", none of them a core code', () => {
  const js = unionOf('JsErrorCode');
  assertSameCodes(js, 'web/index.d.ts JsErrorCode', apiTable('### Errors'), 'docs/API.md "Errors"');
  const both = js.filter((code) => coreCodes().includes(code));
  assert.deepEqual(both, [], `JsErrorCode repeats core codes: ${both.join(', ')}`);
  assert.match(read('web/index.d.ts'), /export type ErrorCode = CoreErrorCode \| JsErrorCode;/);
  assert.match(read('web/index.d.ts'), /readonly code: ErrorCode;/);
});

test('every code web/src throws is a core code or in JsErrorCode', () => {
  const thrown = thrownCodes();
  for (const code of ['not_found', 'disposed', 'network_error']) assert.ok(thrown.has(code), `parsed no '${code}'`);
  const known = [...coreCodes(), ...unionOf('JsErrorCode')];
  const unknown = [...thrown].filter(([code]) => !known.includes(code)).map(([code, where]) => `${code} (${where})`);
  assert.deepEqual(unknown, [], `thrown but in neither CoreErrorCode nor JsErrorCode: ${unknown.join(', ')}`);
});
