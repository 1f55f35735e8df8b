#!/usr/bin/env node
// `caption-scene` throughput (tiles/s) and peak memory on a synthetic 10,000 x 10,000 px scene. Usage (after
// `npm run build`):
//   node bench/scene.mjs [--size 10000] [--tile 256] [--limit N] [--batch-size 8] [--beam 3]
//                        [--checkpoint weights/ucm-mobilenet] [--backend wasm] [--threads 1] [--keep DIR] [--json]
// It writes an 8-bit RGB GeoTIFF (512 px internal tiles, deflate, like a COG; UTM zone 10N, 0.3 m pixels) to a temp
// folder tile by tile (the scene is never held in memory here either), then runs `captionScene` on it with the
// checkpoint, reading the scene a batch of tiles at a time. `--limit N` captions only the first N tiles (of 1,600 for
// 10,000 px at 256 px), so a run fits in a few minutes; tiles/s does not depend on where in the scene they are.
// Reported: tiles/s (and the read-only rate: tiles/s of reading and decoding windows alone), peak RSS of the whole
// process (process.resourceUsage().maxRSS) and the RSS growth during captioning, and the file size.
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { benchmarkImage } from '@s2cpnet/data';
import { loadCaptioner } from '@s2cpnet/model';
import { captionScene, openScene, planTiles } from '@s2cpnet/scene';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '10000' },
    tile: { type: 'string', default: '256' },
    limit: { type: 'string' },
    'batch-size': { type: 'string', default: '8' },
    beam: { type: 'string', default: '3' },
    checkpoint: { type: 'string', default: path.join(root, 'weights/ucm-mobilenet') },
    backend: { type: 'string', default: 'wasm' },
    threads: { type: 'string', default: '1' },
    keep: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const size = Number(values.size);
const tile = Number(values.tile);
const limit = values.limit === undefined ? undefined : Number(values.limit);
const log = (line) => process.stderr.write(`bench/scene: ${line}\n`);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Streams a tiled, deflated 8-bit RGB GeoTIFF to `file`: 16 distinct synthetic aerial blocks, repeated. */
function writeScene(file, side, block = 512) {
  const blocks = Array.from({ length: 16 }, (_, k) => deflateSync(benchmarkImage(block, k + 1).data, { level: 6 }));
  const across = Math.ceil(side / block);
  const count = across * across;
  const fd = openSync(file, 'w');
  let offset = 8;
  const header = Buffer.alloc(8);
  header.write('II', 0, 'latin1');
  header.writeUInt16LE(42, 2);
  writeSync(fd, header, 0, 8, 0);
  const offsets = [];
  const lengths = [];
  for (let i = 0; i < count; i++) {
    const bytes = blocks[(i * 7 + Math.floor(i / across)) % blocks.length];
    writeSync(fd, bytes, 0, bytes.length, offset);
    offsets.push(offset);
    lengths.push(bytes.length);
    offset += bytes.length + (bytes.length % 2);
  }
  // IFD entries: [tag, type, values]; types 3 SHORT, 4 LONG, 12 DOUBLE.
  const geoKeys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32610];
  const entries = [
    [256, 4, [side]],
    [257, 4, [side]],
    [258, 3, [8, 8, 8]],
    [259, 3, [8]],
    [262, 3, [2]],
    [277, 3, [3]],
    [284, 3, [1]],
    [322, 3, [block]],
    [323, 3, [block]],
    [324, 4, offsets],
    [325, 4, lengths],
    [339, 3, [1, 1, 1]],
    [33550, 12, [0.3, 0.3, 0]],
    [33922, 12, [0, 0, 0, 552000, 4182000, 0]],
    [34735, 3, geoKeys],
  ];
  const unit = { 3: 2, 4: 4, 12: 8 };
  const ifdAt = offset;
  const ifd = Buffer.alloc(2 + entries.length * 12 + 4);
  ifd.writeUInt16LE(entries.length, 0);
  let extraAt = ifdAt + ifd.length;
  const extras = [];
  entries.forEach(([tag, type, list], k) => {
    const bytes = Buffer.alloc(list.length * unit[type]);
    list.forEach((v, i) => (type === 3 ? bytes.writeUInt16LE(v, i * 2) : type === 4 ? bytes.writeUInt32LE(v, i * 4) : bytes.writeDoubleLE(v, i * 8)));
    const at = 2 + k * 12;
    ifd.writeUInt16LE(tag, at);
    ifd.writeUInt16LE(type, at + 2);
    ifd.writeUInt32LE(list.length, at + 4);
    if (bytes.length <= 4) bytes.copy(ifd, at + 8);
    else {
      ifd.writeUInt32LE(extraAt, at + 8);
      extras.push([extraAt, bytes]);
      extraAt += bytes.length;
    }
  });
  writeSync(fd, ifd, 0, ifd.length, ifdAt);
  for (const [at, bytes] of extras) writeSync(fd, bytes, 0, bytes.length, at);
  header.writeUInt32LE(ifdAt, 4);
  writeSync(fd, header, 0, 8, 0);
  closeSync(fd);
}

const dir = values.keep ?? mkdtempSync(path.join(os.tmpdir(), 's2cpnet-bench-scene-'));
const file = path.join(dir, `scene-${size}.tif`);
try {
  let started = Date.now();
  writeScene(file, size);
  const fileBytes = statSync(file).size;
  log(`wrote ${file}: ${size} x ${size} px, ${mib(fileBytes)} (deflate, 512 px internal tiles) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const scene = await openScene(file);
  const plan = planTiles(scene, { tile });
  const total = limit === undefined ? plan.tiles.length : Math.min(limit, plan.tiles.length);
  // Reading alone: the same windows, no model.
  started = Date.now();
  for (const t of plan.tiles.slice(0, total)) await scene.readWindow(t.readWindow, tile, tile);
  const readSeconds = (Date.now() - started) / 1000;
  await scene.close();

  const captioner = await loadCaptioner(values.checkpoint, { backend: values.backend, threads: Number(values.threads), batchSize: Number(values['batch-size']), beam: Number(values.beam), cacheDir: false });
  // Warm-up with one full batch: kernels compiled, constants cached, the wasm heap grown to a batch's needs.
  await captioner.caption(Array.from({ length: Number(values['batch-size']) }, (_, k) => benchmarkImage(tile, 90 + k)));
  const rssBefore = process.memoryUsage().rss;
  started = Date.now();
  let lastLog = Date.now();
  const result = await captionScene(captioner, file, {
    tile,
    limit,
    batchSize: Number(values['batch-size']),
    previewSize: 1024,
    onProgress: (done, all) => {
      if (Date.now() - lastLog > 15_000 || done === all) {
        lastLog = Date.now();
        log(`${done}/${all} tiles, ${(done / ((Date.now() - started) / 1000)).toFixed(2)} tiles/s`);
      }
    },
  });
  const seconds = (Date.now() - started) / 1000;
  const rssAfter = process.memoryUsage().rss;
  captioner.dispose();
  const report = {
    scene: { size, fileBytes, layout: '512 px tiles, deflate', tiles: plan.tiles.length },
    checkpoint: values.checkpoint,
    backend: captioner.backend,
    threads: Number(values.threads),
    tile,
    batchSize: Number(values['batch-size']),
    beam: Number(values.beam),
    captioned: result.tiles.length,
    seconds: Math.round(seconds * 10) / 10,
    tilesPerSecond: Math.round((total / seconds) * 100) / 100,
    readTilesPerSecond: Math.round((total / readSeconds) * 10) / 10,
    estimatedFullSceneMinutes: Math.round((plan.tiles.length / (total / seconds) / 60) * 10) / 10,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    rssGrowthDuringCaptioningBytes: rssAfter - rssBefore,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    log(`${total} of ${plan.tiles.length} tiles captioned in ${report.seconds} s: ${report.tilesPerSecond} tiles/s on ${report.backend} (${report.threads} thread${report.threads === 1 ? '' : 's'}), batch ${report.batchSize}, beam ${report.beam}`);
    log(`reading alone: ${report.readTilesPerSecond} tiles/s; the whole scene would take about ${report.estimatedFullSceneMinutes} min`);
    log(`peak RSS ${mib(report.peakRssBytes)}; RSS growth while captioning ${mib(report.rssGrowthDuringCaptioningBytes)} (an 8-bit 10,000 px scene decoded whole would be ${mib(size * size * 3)})`);
  }
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
