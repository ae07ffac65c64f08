// Builds dist/: the page, its stylesheet, and app.js, one bundle of src/main.js with mqtt.js
// and qrcode from node_modules (no CDN: the display works on a network with no internet).
//   node build.mjs
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  entryPoints: [join(src, 'main.js')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // TVs keep old browsers for years: ES2018 covers Chromium 64+, Safari 12+, Tizen 5+, webOS 5+.
  target: ['es2018'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

for (const file of ['index.html', 'style.css']) {
  await copyFile(join(src, file), join(dist, file));
}
console.log(`built ${dist}`);
