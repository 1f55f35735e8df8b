#!/usr/bin/env node
// Queue benchmarks (issue #17): the overhead per image of captioning through the queue (enqueue + one `s2cpnet
// worker` process, end to end) against captioning the same images directly (`captionFiles`, same checkpoint and
// settings, same kind of process), and the speed-up of 2 worker processes over 1. Starts its own redis-server on
// a free port (no persistence) and stops it. Runs the TypeScript sources (it restarts itself with tsx), so no build
// is needed. Usage:
//   node bench/queue.mjs [--images N] [--checkpoint REF] [--backend wasm] [--threads 1] [--batch 16] [--reps 1] [--json]
// Images: the first N of UCM's val split from the shared folder (S2CPNET_SHARED_DIR or ../shared), else N
// synthetic 256 px scenes. Checkpoint: the workspace weights package (weights/ucm-mobilenet) by default.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_ARGS = ['--conditions=@s2cpnet/source', '--import', 'tsx'];

if (!process.execArgv.includes('tsx')) {
  // Restart with the source condition and tsx, so that the workspace's TypeScript sources run as they are.
  const child = spawn(process.execPath, [...SOURCE_ARGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

async function main() {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '96' },
      checkpoint: { type: 'string', default: path.join(root, 'weights', 'ucm-mobilenet') },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string', default: '1' },
      batch: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      reps: { type: 'string', default: '1' },
      direct: { type: 'string' }, // internal: time captionFiles on the files listed in this file
    },
  });
  if (values.direct) return directRun(values);
  const log = (line) => process.stderr.write(`bench queue: ${line}\n`);
  const count = Number(values.images);
  const work = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-bench-queue-'));
  const { redisServerPath, startRedisServer } = await import(path.join(root, 'scripts/redis-server.ts'));
  const binary = redisServerPath();
  if (!binary) throw new Error('no redis-server on this machine (apt-get install redis-server)');
  const server = await startRedisServer(binary);
  try {
    const files = await benchImages(count, work, log);
    const listFile = path.join(work, 'list.txt');
    writeFileSync(listFile, `${files.join('\n')}\n`);
    log(`${files.length} images, checkpoint ${values.checkpoint}, backend ${values.backend} with ${values.threads} thread(s), ${values.batch} images per job, redis ${server.url}`);

    // (a) direct captioning, in a process of its own like the worker, alternated with the queue runs --reps times
    // (medians), so that a slower minute of a shared machine falls on both sides.
    const loadAtStart = os.loadavg()[0];
    const reps = Number(values.reps);
    const halves = [files.slice(0, Math.ceil(files.length / 2)), files.slice(Math.ceil(files.length / 2))].map((part, i) => {
      const file = path.join(work, `half-${i}.txt`);
      writeFileSync(file, `${part.join('\n')}\n`);
      return file;
    });
    const parallelTimes = [];
    const median = (xs) => {
      const sorted = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    const directTimes = [];
    const oneTimes = [];
    const twoTimes = [];
    for (let r = 0; r < reps; r++) {
      const d = await runDirect(values, listFile, log);
      log(`direct captionFiles: ${d.seconds.toFixed(1)} s (${(d.seconds / files.length * 1000).toFixed(0)} ms/image)`);
      directTimes.push(d.seconds);
      const q1 = await runQueue(values, server, listFile, 1, log);
      log(`queue, 1 worker: ${q1.seconds.toFixed(1)} s (${(q1.seconds / files.length * 1000).toFixed(0)} ms/image)`);
      oneTimes.push(q1.seconds);
      const q2 = await runQueue(values, server, listFile, 2, log);
      log(`queue, 2 workers: ${q2.seconds.toFixed(1)} s (${(q2.seconds / files.length * 1000).toFixed(0)} ms/image)`);
      twoTimes.push(q2.seconds);
      // The machine's own ceiling: two direct processes at once, half the images each (no queue).
      const both = await Promise.all(halves.map((half) => runDirect(values, half, log)));
      const parallel = Math.max(...both.map((b) => b.seconds));
      log(`2 direct processes, half each: ${parallel.toFixed(1)} s`);
      parallelTimes.push(parallel);
    }
    const direct = { seconds: median(directTimes) };
    const one = { seconds: median(oneTimes) };
    const two = { seconds: median(twoTimes) };
    const parallelDirect = median(parallelTimes);
    const overhead = (one.seconds - direct.seconds) / direct.seconds;
    const speedup = one.seconds / two.seconds;
    const result = {
      images: files.length,
      checkpoint: values.checkpoint,
      backend: values.backend,
      threads: Number(values.threads),
      batch: Number(values.batch),
      cpus: os.cpus().length,
      loadAverageAtStart: loadAtStart,
      reps,
      runs: { direct: directTimes, queue1: oneTimes, queue2: twoTimes, directTwoProcesses: parallelTimes },
      directTwoProcessesSpeedup: direct.seconds / parallelDirect,
      directSeconds: direct.seconds,
      queue1Seconds: one.seconds,
      queue2Seconds: two.seconds,
      overheadPerImagePercent: overhead * 100,
      speedup2over1: speedup,
      targets: { overheadPerImagePercent: '<= 5', speedup2over1: '>= 1.7' },
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        [
          `images                         ${files.length}`,
          `direct captionFiles            ${direct.seconds.toFixed(1)} s`,
          `queue, 1 worker (end to end)   ${one.seconds.toFixed(1)} s`,
          `queue, 2 workers (end to end)  ${two.seconds.toFixed(1)} s`,
          `overhead per image             ${(overhead * 100).toFixed(1)} %   (target <= 5 %)`,
          `2 workers / 1 worker           ${speedup.toFixed(2)}x    (target >= 1.7x on 2 cores)`,
          `2 direct processes / 1         ${(direct.seconds / parallelDirect).toFixed(2)}x    (the machine's ceiling, no queue)`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** UCM val images from the shared folder, else synthetic scenes written to `work`. */
async function benchImages(count, work, log) {
  const { sharedRoot } = await import(path.join(root, 'scripts/shared-dir.ts'));
  const dataset = path.join(sharedRoot(), 'data', 'ucm', 'dataset.json');
  if (existsSync(dataset)) {
    const images = JSON.parse(readFileSync(dataset, 'utf8')).images.filter((i) => i.split === 'val').slice(0, count);
    if (images.length === count) return images.map((i) => path.join(path.dirname(dataset), 'images', i.filename));
  }
  log('UCM val images not found in the shared folder: using synthetic 256 px scenes');
  const { benchmarkImage, encodePng } = await import('@s2cpnet/data');
  mkdirSync(path.join(work, 'images'));
  return Array.from({ length: count }, (_, i) => {
    const file = path.join(work, 'images', `scene-${String(i).padStart(4, '0')}.png`);
    writeFileSync(file, encodePng(benchmarkImage(256, 1000 + i)));
    return file;
  });
}

/** Child-process entry of the direct run: load the captioner, then time captionFiles alone. */
async function directRun(values) {
  const { loadCaptioner } = await import('@s2cpnet/model');
  const files = readFileSync(values.direct, 'utf8').trim().split('\n');
  const captioner = await loadCaptioner(values.checkpoint, { backend: values.backend, threads: Number(values.threads), cacheDir: false });
  const started = performance.now();
  await captioner.captionFiles(files, { onError: 'skip' });
  const seconds = (performance.now() - started) / 1000;
  captioner.dispose();
  process.stdout.write(`${JSON.stringify({ seconds })}\n`);
  process.exit(0);
}

function runDirect(values, listFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...SOURCE_ARGS, fileURLToPath(import.meta.url), '--direct', listFile, '--checkpoint', values.checkpoint, '--backend', values.backend, '--threads', values.threads], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => void (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`direct run failed (exit ${code})`))));
  });
}

function redisCommand(port, ...words) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(d.toString());
    });
  });
}

function cli(args, options = {}) {
  return spawn(process.execPath, [...SOURCE_ARGS, path.join(root, 'packages/cli/src/bin.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/**
 * Starts `workers` worker processes on an empty Redis and waits until each has loaded the checkpoint (as the direct
 * run's clock starts after loading); then times from the enqueue (in this process) until every image is done (the time
 * read from the completion times the workers store in Redis), and stops the workers with SIGTERM.
 */
async function runQueue(values, server, listFile, workers, log) {
  await redisCommand(server.port, 'FLUSHALL');
  const queue = `bench-${workers}`;
  const total = readFileSync(listFile, 'utf8').trim().split('\n').length;
  const children = [];
  const ready = [];
  for (let w = 0; w < workers; w++) {
    const child = cli(['--backend', values.backend, '--threads', values.threads, 'worker', '--redis', server.url, '--queue', queue, '--checkpoint', values.checkpoint, '--no-cache', '--batch-size', '8']);
    let text = '';
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, text })));
    ready.push(
      new Promise((resolve, reject) => {
        child.stderr.on('data', (d) => {
          text += d;
          if (/worker: ready/.test(text)) resolve();
        });
        exited.then(({ code }) => reject(new Error(`worker ${w} exited (${code}) before it was ready: ${text}`)));
      }),
    );
    children.push({ child, exited, log: () => text });
  }
  await Promise.all(ready);
  const { enqueue } = await import('@s2cpnet/queue');
  // The end is read from Redis, not seen by polling: workers store each image's completion time (ms, this machine's
  // clock) in the queue's `done` set, so a slow poll (every 500 ms, one short connection) costs no precision and
  // takes no CPU from the workers (on this 2-vCPU machine a 50 ms poll cost them several per cent).
  const startedWall = Date.now();
  const started = performance.now();
  await enqueue({ redis: server.url, queue, list: listFile, batch: Number(values.batch) });
  const enqueued = performance.now();
  for (;;) {
    const done = Number((await redisCommand(server.port, 'ZCARD', `s2cpnet:queue:${queue}:done`)).slice(1));
    const failed = Number((await redisCommand(server.port, 'HLEN', `s2cpnet:queue:${queue}:failures`)).slice(1));
    if (done + failed >= total) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const last = (await redisCommand(server.port, 'ZRANGE', `s2cpnet:queue:${queue}:done`, '-1', '-1', 'WITHSCORES')).split('\r\n');
  const lastDone = Number(last[last.length - 2]);
  if (!Number.isFinite(lastDone)) throw new Error(`cannot read the last completion time from Redis: ${JSON.stringify(last)}`);
  const seconds = (lastDone - startedWall) / 1000;
  for (const { child } of children) child.kill('SIGTERM');
  for (const [w, { exited }] of children.entries()) {
    const { code, text } = await exited;
    if (code !== 0) throw new Error(`worker ${w} exited with ${code}: ${text}`);
    log(`worker ${w + 1}/${workers}: ${text.trim().split('\n').pop()}`);
  }
  log(`enqueue ${((enqueued - started) / 1000).toFixed(2)} s; enqueue to last image done: ${seconds.toFixed(1)} s`);
  return { seconds, enqueueSeconds: (enqueued - started) / 1000 };
}
