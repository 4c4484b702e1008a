// What a user who installs the package gets besides the code: the files `npm publish` would
// upload (README, LICENSE, CHANGELOG, the docs and the image they show, the types, the wasm
// build), every relative link of every packed Markdown file resolving to a packed file, the
// README's quick start type-checking under `tsc --strict` with default settings (TypeScript 5
// and 7, no skipLibCheck, no lib override), and the install from a checkout's directory.
// `npm publish --dry-run` asks the registry whether the version exists, so the file list is
// taken from `npm pack --dry-run`, which needs no network and lists the same files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let dir;
let tarball;
let unpacked; // the tarball extracted: its files under unpacked/package/
let app; // a scratch app with the tarball installed

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'modelkeep-publish-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo }).toString();
  tarball = join(dir, JSON.parse(out)[0].filename);
  unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  execFileSync('tar', ['xzf', tarball, '-C', unpacked]);
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--offline'], { cwd: app, stdio: 'ignore' });
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under `root`, as '/'-separated paths relative to it. */
function walk(root, at = root) {
  return readdirSync(at, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(root, join(at, e.name)) : [relative(root, join(at, e.name)).split('\\').join('/')],
  );
}

test('npm pack --dry-run lists what the README links and what users import', () => {
  const files = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: repo }).toString())[0].files.map(
    (f) => f.path,
  );
  const docs = readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md'));
  assert.ok(docs.includes('SPEC.md') && docs.length >= 7, docs.join());
  for (const f of [
    'package.json',
    'README.md',
    'LICENSE',
    'CHANGELOG.md',
    ...docs.map((d) => `docs/${d}`),
    'docs/demo.png',
    'web/index.d.ts',
    'web/src/index.js',
    'web/dist/modelkeep_wasm.wasm',
    'web/dist/modelkeep_wasm.mjs',
    'web/dist-importer/modelkeep_wasm.wasm',
    'web/dist-importer/modelkeep_wasm.mjs',
  ])
    assert.ok(files.includes(f), `${f} is not packed: ${files.join(', ')}`);
  assert.deepEqual([...files].sort(), walk(join(unpacked, 'package')).sort(), 'the dry run lists the tarball');
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  assert.equal(pkg.license, 'MIT');
  assert.match(
    readFileSync(join(repo, 'LICENSE'), 'utf8'),
    /^MIT License\n\nCopyright \(c\) 2026 the modelkeep authors\n/,
  );
  assert.ok(pkg.engines?.node, 'engines.node');
});

/** The link targets of a Markdown text, outside code: [text](target), [ref]: target, src="…". */
function linksOf(markdown) {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
  return [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
    ...[...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]),
    ...[...prose.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]),
  ];
}

test('every relative link in every packed .md file resolves to a packed file', () => {
  const root = join(unpacked, 'package');
  const packed = new Set(walk(root));
  const markdown = [...packed].filter((f) => f.endsWith('.md'));
  assert.ok(markdown.includes('README.md') && markdown.includes('docs/SPEC.md'), markdown.join());
  const broken = [];
  let checked = 0;
  for (const file of markdown) {
    for (const link of linksOf(readFileSync(join(root, file), 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('#')) continue; // https:, mailto:, anchors
      const target = posix.normalize(posix.join(posix.dirname(file), decodeURI(link.split('#')[0])));
      checked++;
      if (!packed.has(target)) broken.push(`${file}: ${link}`);
    }
  }
  assert.ok(checked > 20, `only ${checked} relative links found`);
  assert.deepEqual(broken, [], `links to files the tarball lacks:\n${broken.join('\n')}`);
});

/** The README's "Quick start (web page)" code, as a user would paste it. */
function quickStart() {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start (web page)'));
  const code = section.match(/```js\n([\s\S]*?)```/);
  assert.ok(code, 'README has a ```js block under "## Quick start (web page)"');
  assert.match(code[1], /from 'modelkeep'/);
  return code[1];
}

// TypeScript's defaults, not ours: --module nodenext alone (target ESNext), and the settings
// whose default lib lacks Symbol.dispose (node16 implies ES2022; an explicit older target).
const settings = [
  ['--module', 'nodenext'],
  ['--module', 'node16'],
  ['--module', 'nodenext', '--target', 'es2022'],
];
const compilers = [
  // By their packages' paths: both provide a `tsc` bin, and node_modules/.bin/tsc is either.
  ['TypeScript 7', join(repo, 'node_modules', 'typescript', 'bin', 'tsc')],
  ['TypeScript 5', join(repo, 'node_modules', 'typescript5', 'bin', 'tsc')],
];

for (const [name, tsc] of compilers) {
  test(`the README quick start passes ${name}'s tsc --strict --noEmit against the installed package`, () => {
    const version = execFileSync(tsc, ['--version']).toString();
    assert.match(version, name === 'TypeScript 7' ? /Version 7\./ : /Version 5\./);
    writeFileSync(join(app, 'quickstart.ts'), `${quickStart()}\nexport {};\n`);
    // `using` works where the project's lib has explicit resource management.
    writeFileSync(
      join(app, 'using.ts'),
      `import { nn } from 'modelkeep';\n{\n  using model = nn.sequential(nn.linear(3, 5));\n  model.forward([[1, 2, 3]]);\n}\n`,
    );
    const failures = [];
    const run = (args) => {
      const r = spawnSync(tsc, ['--strict', '--noEmit', ...args], { cwd: app, encoding: 'utf8' });
      if (r.status !== 0) failures.push(`tsc ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    };
    for (const options of settings) run([...options, 'quickstart.ts']);
    run(['--module', 'nodenext', '--target', 'esnext', 'using.ts']);
    assert.deepEqual(failures, []);
  });
}

test('npm install /path/to/checkout: the directory installs and imports by name', () => {
  const linked = join(dir, 'linked');
  mkdirSync(linked);
  writeFileSync(join(linked, 'package.json'), JSON.stringify({ name: 'scratch-dir', private: true, type: 'module' }));
  execFileSync('npm', ['install', repo, '--no-audit', '--no-fund', '--offline'], { cwd: linked, stdio: 'ignore' });
  assert.ok(existsSync(join(linked, 'node_modules', 'modelkeep', 'web', 'dist', 'modelkeep_wasm.wasm')));
  writeFileSync(
    join(linked, 'node.mjs'),
    `import { ready, nn } from 'modelkeep';\nawait ready();\nconsole.log(nn.sequential(nn.linear(3, 5), { seed: 1 }).forward([[1, 2, 3]]).shape.join());\n`,
  );
  assert.equal(execFileSync(process.execPath, ['node.mjs'], { cwd: linked }).toString().trim(), '1,5');
});
