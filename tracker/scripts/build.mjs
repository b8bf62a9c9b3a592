// Builds tracker/src/*.js into tracker/dist/ (minified, byte-for-byte reproducible).
//   node scripts/build.mjs           write dist/
//   node scripts/build.mjs --check   rebuild in memory, fail if dist/ differs or the core is too big
// Both print every file's raw and gzipped (level 9) size.
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FILES = [
  'footfall.js',
  'footfall.vitals.js',
  'footfall.errors.js',
  'footfall.interactions.js',
  'footfall.forms.js',
  'footfall.search.js',
  'footfall.experiments.js',
];
const CORE_GZIP_LIMIT = 1536;
const check = process.argv.includes('--check');

const result = await build({
  entryPoints: FILES.map((f) => join(root, 'src', f)),
  outdir: join(root, 'dist'),
  write: false,
  bundle: false,
  minify: true,
  target: 'es2020',
  charset: 'ascii',
  legalComments: 'none',
  logLevel: 'warning',
});

const built = new Map(result.outputFiles.map((o) => [o.path.split('/').pop(), Buffer.from(o.contents)]));
let failed = false;
if (!check) mkdirSync(join(root, 'dist'), { recursive: true });

console.log('file'.padEnd(28) + 'raw'.padStart(8) + 'gzip'.padStart(8));
for (const name of FILES) {
  const bytes = built.get(name);
  if (!bytes) throw new Error(`esbuild produced no ${name}`);
  const gz = gzipSync(bytes, { level: 9 }).length;
  console.log(name.padEnd(28) + String(bytes.length).padStart(8) + String(gz).padStart(8));
  const path = join(root, 'dist', name);
  if (check) {
    if (!existsSync(path) || !readFileSync(path).equals(bytes)) {
      console.error(`dist/${name} differs from a fresh build of src/${name}: run \`npm run build\` and commit dist/`);
      failed = true;
    }
  } else {
    writeFileSync(path, bytes);
  }
  if (name === 'footfall.js' && gz > CORE_GZIP_LIMIT) {
    console.error(`footfall.js is ${gz} bytes gzipped, over the ${CORE_GZIP_LIMIT}-byte budget`);
    failed = true;
  }
}
if (failed) process.exit(1);
