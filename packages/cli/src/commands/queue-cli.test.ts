/**
 * `s2cpnet queue` and `s2cpnet worker` against a real redis-server started here (127.0.0.1, a free port, no
 * persistence): two worker processes, one killed with SIGKILL mid-batch, the other finishes; the export holds every
 * image once with the caption `s2cpnet caption` gives; SIGTERM finishes the running batch and exits 0; clear errors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchmarkImage, encodePng } from '@s2cpnet/data';
import { redisServerPath, REDIS_SKIP_REASON, startRedisServer, type RedisServer } from '../../../../scripts/redis-server';
import { initBackend } from '../backend';
import { runCli } from './cli.test-util';
import { loadQueuePackage } from './queue-package';
import { mosaic, writeTiff } from '../../../scene/src/tiff-writer.test-util';
import { saveTinyCheckpoint } from '../../../model/src/tiny-checkpoint.test-util';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin.ts');
const binary = redisServerPath();
let root = '';
let server: RedisServer | null = null;
const children: ChildProcess[] = [];
const run = (args: string[]) => runCli(args, root);

/** A worker process through the real `s2cpnet` entry (bin.ts), on the cpu backend. */
function startWorker(queue: string, extra: string[] = []): { child: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--conditions=@s2cpnet/source', '--import', 'tsx', BIN, '--backend', 'cpu', 'worker', '--redis', server!.url, '--queue', queue, '--checkpoint', path.join(root, 'ckpt'), '--no-cache', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, S2CPNET_RELAUNCHED: '' } },
  );
  children.push(child);
  let text = '';
  child.stdout!.on('data', (d: Buffer) => void (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => void (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, log: () => text, exited };
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('s2cpnet queue / worker: help and errors without Redis', () => {
  it('--help lists every option with its default', async () => {
    const { QUEUE_OPTIONS } = await import('./queue');
    const { WORKER_OPTIONS } = await import('./worker');
    for (const [name, options] of [['queue', QUEUE_OPTIONS], ['worker', WORKER_OPTIONS]] as const) {
      const help = await run([name, '--help']);
      expect(help.code).toBe(0);
      for (const [flag, spec] of Object.entries(options)) {
        const lines = help.out.split('\n');
        const start = lines.findIndex((l) => new RegExp(`^\\s+--${flag}(?![\\w-])`).test(l));
        expect(start, `${name} --${flag}`).toBeGreaterThanOrEqual(0);
        let entry = lines[start]!;
        for (const l of lines.slice(start + 1)) {
          if (!/^\s{6,}\S/.test(l) || /^\s+--/.test(l)) break;
          entry += `\n${l}`;
        }
        expect(entry, `${name} --${flag}: its default`).toMatch((spec as { type: string }).type === 'string' ? /\[(default: .+|required)\]/s : /\[(off|on)/);
      }
    }
  });

  it('bad URLs, no server, onnx and missing flags are usage errors (exit 2) naming the problem', async () => {
    const bad = await run(['queue', 'status', '--queue', 'q', '--redis', 'localhost:6379']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--redis: expected redis:\/\//);
    const started = Date.now();
    const none = await run(['queue', 'status', '--queue', 'q', '--redis', 'redis://127.0.0.1:1']);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--redis: cannot reach a Redis server at redis:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - started).toBeLessThan(6000);
    expect((await run(['worker', '--queue', 'q', '--checkpoint', 'x', '--runtime', 'onnx'])).err).toMatch(/--runtime: queue workers run tfjs only: the onnx runtime is not available to workers yet/);
    expect((await run(['queue', 'add', '--queue', 'q', '--images', 'a', '--list', 'b'])).err).toMatch(/exactly one of --images/);
    expect((await run(['queue', 'add', '--queue', 'q', '--images', 'a', '--tile', '128'])).err).toMatch(/--tile: only used with --scene/);
    expect((await run(['queue', 'status', '--queue', 'q', '--out', 'x.json'])).err).toMatch(/--out: not an option of 'queue status'/);
    expect((await run(['queue', 'export', '--queue', 'q', '--out', 'x.kml'])).err).toMatch(/--out: expected a \.json, \.jsonl, \.csv or \.geojson file name/);
    expect((await run(['queue', 'frobnicate'])).code).toBe(2);
  });

  it('a missing @s2cpnet/queue is a message with the install command', async () => {
    const missing = Object.assign(new Error("Cannot find package '@s2cpnet/queue' imported from x"), { code: 'ERR_MODULE_NOT_FOUND' });
    await expect(loadQueuePackage(() => Promise.reject(missing))).rejects.toThrow(/npm install @s2cpnet\/queue/);
  });
});

describe.skipIf(!binary)(`s2cpnet queue / worker on a real redis-server${binary ? '' : ` (${REDIS_SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-queue-cli-'));
    await initBackend({ backend: 'cpu' });
    await saveTinyCheckpoint(path.join(root, 'ckpt'), { words: 'a road river tree house car green field'.split(' ') });
    // 96 px images: a little work per image, so that a batch of 6 with one image per forward pass takes a while.
    mkdirSync(path.join(root, 'images'));
    for (let i = 0; i < 12; i++) writeFileSync(path.join(root, 'images', `scene-${String(i).padStart(2, '0')}.png`), encodePng(benchmarkImage(96, 200 + i)));
    writeFileSync(path.join(root, 'images', 'zz-broken.png'), 'not an image');
    server = await startRedisServer(binary!);
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('two workers, one killed with SIGKILL mid-batch: every image captioned once, as caption captions it', async () => {
    const added = await run(['queue', 'add', '--redis', server!.url, '--queue', 'archive', '--images', 'images', '--batch', '6']);
    expect(added.code, added.err).toBe(0);
    expect(added.err).toMatch(/13 images in 3 batches of up to 6 on queue archive: 3 added/);
    const a = startWorker('archive', ['--lock-seconds', '2', '--batch-size', '1', '--exit-when-empty']);
    const b = startWorker('archive', ['--lock-seconds', '2', '--batch-size', '1', '--exit-when-empty']);
    // Kill whichever starts a batch first, before that batch is done.
    await waitFor(() => /batch \S+ started/.test(a.log()) || /batch \S+ started/.test(b.log()), 30_000, 'a batch to start');
    const [victim, survivor] = /batch \S+ started/.test(a.log()) ? [a, b] : [b, a];
    victim.child.kill('SIGKILL');
    expect(victim.log()).not.toMatch(/batch \S+ done/);
    expect(await survivor.exited, survivor.log()).toBe(0);
    expect(survivor.log()).toMatch(/had lost its worker: back to waiting/);
    expect(survivor.log()).toMatch(/stopped \(queue empty\)/);

    const status = await run(['queue', 'status', '--redis', server!.url, '--queue', 'archive', '--json']);
    expect(status.code, status.err).toBe(0);
    const parsed = JSON.parse(status.out);
    expect(parsed.jobs).toMatchObject({ completed: 3, failed: 0, active: 0, waiting: 0 });
    expect(parsed.images).toEqual({ total: 13, done: 12, failed: 1, remaining: 0 });
    expect(parsed.failures[0].file).toBe(path.join(root, 'images', 'zz-broken.png'));
    const text = await run(['queue', 'status', '--redis', server!.url, '--queue', 'archive']);
    expect(text.out).toMatch(/12 of 13 captioned, 1 failed, 0 to go/);
    expect(text.out).toMatch(/zz-broken\.png: /);

    const exported = await run(['queue', 'export', '--redis', server!.url, '--queue', 'archive', '--out', 'queue.json', '--relative-to', '.']);
    expect(exported.code, exported.err).toBe(0);
    const direct = await run(['caption', '--checkpoint', 'ckpt', 'images', '--on-error', 'skip', '--no-cache', '--out', 'direct.json']);
    expect(direct.code, direct.err).toBe(0);
    const fromQueue = JSON.parse(readFileSync(path.join(root, 'queue.json'), 'utf8')) as { file: string }[];
    const fromCaption = JSON.parse(readFileSync(path.join(root, 'direct.json'), 'utf8')) as { file: string; error?: string }[];
    expect(new Set(fromQueue.map((r) => r.file)).size).toBe(13);
    // The same records, the broken file's error included.
    expect(fromQueue).toEqual(fromCaption);
    const absolute = await run(['queue', 'export', '--redis', server!.url, '--queue', 'archive', '--out', 'abs.csv']);
    expect(absolute.code).toBe(0);
    expect(readFileSync(path.join(root, 'abs.csv'), 'utf8')).toContain(path.join(root, 'images', 'scene-00.png'));
  }, 180_000);

  it('SIGTERM mid-batch: the worker finishes its batch, stores it and exits 0', async () => {
    const added = await run(['queue', 'add', '--redis', server!.url, '--queue', 'term', '--images', 'images', '--batch', '13']);
    expect(added.code, added.err).toBe(0);
    // Already captioned images are skipped by hash: caption them afresh under other settings (beam 2).
    const worker = startWorker('term', ['--beam', '2', '--batch-size', '1']);
    await waitFor(() => /batch \S+ started/.test(worker.log()), 90_000, 'the batch to start');
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.log()).toBe(0);
    const log = worker.log();
    expect(log).toMatch(/SIGTERM received: finishing the running batch/);
    expect(log.indexOf('SIGTERM received'), log).toBeLessThan(log.search(/batch \S+ done: 12 captioned, 0 already stored, 1 failed/));
    expect(log).toMatch(/stopped \(SIGTERM\)/);
    const status = JSON.parse((await run(['queue', 'status', '--redis', server!.url, '--queue', 'term', '--json'])).out);
    expect(status.jobs).toMatchObject({ completed: 1, active: 0, waiting: 0 });
    expect(status.images.done).toBe(12);
  }, 120_000);

  it('export refuses while images are missing, unless --allow-missing', async () => {
    await run(['queue', 'add', '--redis', server!.url, '--queue', 'pending', '--images', 'images']);
    const refused = await run(['queue', 'export', '--redis', server!.url, '--queue', 'pending', '--out', 'p.json']);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/13 of 13 images are not captioned yet/);
    const allowed = await run(['queue', 'export', '--redis', server!.url, '--queue', 'pending', '--out', 'p.jsonl', '--allow-missing']);
    expect(allowed.code).toBe(0);
    expect(allowed.err).toMatch(/13 images not captioned yet were left out/);
    const again = await run(['queue', 'add', '--redis', server!.url, '--queue', 'pending', '--images', 'images', '--json']);
    expect(JSON.parse(again.out)).toMatchObject({ added: 0, existing: 1, newImages: 0 });
  });

  it('queue add --scene, a worker, queue export .geojson: what caption-scene writes for the scene', async () => {
    // A 3 x 2 mosaic of 64 px tiles in UTM zone 10N (as the caption-scene test builds it).
    const cells = Array.from({ length: 6 }, (_, i) => benchmarkImage(64, 300 + i));
    const { data } = mosaic(cells, 3, 64);
    const geo = { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3048, 0.3048] as [number, number] };
    writeFileSync(path.join(root, 'mosaic.tif'), writeTiff([{ width: 192, height: 128, samples: 3, bits: 8, data, tileSize: 32 }], geo));
    const added = await run(['queue', 'add', '--redis', server!.url, '--queue', 'scene', '--scene', 'mosaic.tif', '--tile', '64', '--batch', '4']);
    expect(added.code, added.err).toBe(0);
    expect(added.err).toMatch(/6 images in 2 batches of up to 4 on queue scene: 2 added/);
    const worker = startWorker('scene', ['--exit-when-empty', '--lock-seconds', '5']);
    expect(await worker.exited, worker.log()).toBe(0);
    const exported = await run(['queue', 'export', '--redis', server!.url, '--queue', 'scene', '--out', 'queue.geojson']);
    expect(exported.code, exported.err).toBe(0);
    expect(exported.err).toMatch(/wrote 6 captioned tiles/);
    const direct = await run(['caption-scene', 'mosaic.tif', '--checkpoint', 'ckpt', '--tile', '64', '--cache-dir', path.join(root, 'cache'), '--out', 'direct.geojson']);
    expect(direct.code, direct.err).toBe(0);
    type Collection = { s2cpnet: Record<string, unknown>; features: { geometry: unknown; properties: { caption: string; categories: { name: string; probability: number }[] } }[] };
    const [fromQueue, fromScene] = ['queue.geojson', 'direct.geojson'].map((f) => JSON.parse(readFileSync(path.join(root, f), 'utf8')) as Collection);
    expect(fromQueue.features.map((f) => f.geometry)).toEqual(fromScene!.features.map((f) => f.geometry));
    expect(fromQueue.features.map((f) => f.properties.caption)).toEqual(fromScene!.features.map((f) => f.properties.caption));
    expect(fromQueue.features.map((f) => f.properties.categories.map((c) => c.name))).toEqual(fromScene!.features.map((f) => f.properties.categories.map((c) => c.name)));
    expect({ ...fromQueue.s2cpnet, source: null }).toEqual({ ...fromScene!.s2cpnet, source: null });
    const json = await run(['queue', 'export', '--redis', server!.url, '--queue', 'scene', '--out', 'tiles.json', '--relative-to', '.']);
    expect(json.code, json.err).toBe(0);
    expect((JSON.parse(readFileSync(path.join(root, 'tiles.json'), 'utf8')) as { file: string }[]).map((r) => r.file)).toEqual(
      ['0,0,64,64', '64,0,128,64', '128,0,192,64', '0,64,64,128', '64,64,128,128', '128,64,192,128'].map((w) => `mosaic.tif#${w}`),
    );
  }, 120_000);
});
