/**
 * A throw-away `redis-server` for tests and benchmarks: Debian's server on 127.0.0.1, a free port, no persistence
 * (or an append-only file in a given folder, to restart it), stopped by its pid. Outside CI a machine without `redis-server` skips the tests that need it; in CI (`CI=true`)
 * a missing server is an error, so those tests can never be skipped silently there (as with scripts/shared-dir.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** The `redis-server` binary: `S2CPNET_REDIS_SERVER`, else the first on PATH, else /usr/bin/redis-server; undefined when none exists outside CI. */
export function redisServerPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env['S2CPNET_REDIS_SERVER'], ...(env['PATH'] ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'redis-server')), '/usr/bin/redis-server'];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  if (env['CI'] === 'true') throw new Error('redis-server is missing: CI installs it (apt-get install redis-server); the queue tests need a real server and are never skipped in CI');
  return undefined;
}

/** The reason a test is skipped, for its title. */
export const REDIS_SKIP_REASON = 'skipped: no redis-server on this machine (apt-get install redis-server, or set S2CPNET_REDIS_SERVER)';

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      text += d.toString();
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
  });
}

export interface StartRedisOptions {
  /** Listen on this port (to restart a server where its clients expect it); default a free one. */
  port?: number;
  /** Keep an append-only file in this folder (`appendonly yes`, fsync `appendfsync`), so a restarted server has the data. Default: no persistence. */
  persistDir?: string;
  appendfsync?: 'always' | 'everysec';
}

/**
 * Starts a server (a few tries on free ports, in case another process takes the port first) and waits until it
 * answers PING.
 */
export async function startRedisServer(binary: string, options: StartRedisOptions = {}): Promise<RedisServer> {
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = options.port ?? (await freePort());
    const persistence = options.persistDir
      ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec', '--dir', options.persistDir, '--save', '']
      : ['--save', '', '--appendonly', 'no'];
    const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', ...persistence, '--daemonize', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => void (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => void (output += d.toString()));
    let exited = false;
    child.on('exit', () => void (exited = true));
    const end = Date.now() + 10_000;
    while (!exited && Date.now() < end) {
      if (await ping(port)) {
        const stop = async () => {
          if (exited) return;
          const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          process.kill(child.pid!, 'SIGKILL');
          await gone;
        };
        return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid!, process: child, stop };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) process.kill(child.pid!, 'SIGKILL');
    lastOutput = output;
  }
  throw new Error(`redis-server did not start: ${lastOutput.trim()}`);
}
