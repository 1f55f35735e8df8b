import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S2CPNetError } from '../errors';
import { acquireLock, recoverAtomicLeftovers, recoverDirAtomic, writeDirAtomic, type LockOwner } from './atomic';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'testing', 'fixtures', 'io-child.ts');
const NODE_ARGS = ['--conditions=@s2cpnet/source', '--import', 'tsx', CHILD];

let root = '';
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-atomic-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const read = (dir: string) => readFileSync(path.join(dir, 'value.txt'), 'utf8');
const dotted = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.'));

function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('writeDirAtomic and recovery from a crash', () => {
  it('replaces a folder and leaves nothing behind', async () => {
    const dir = path.join(root, 'plain', 'ckpt');
    for (const v of ['one', 'two']) await writeDirAtomic(dir, async (tmp) => writeFileSync(path.join(tmp, 'value.txt'), v));
    expect(read(dir)).toBe('two');
    expect(readdirSync(path.dirname(dir))).toEqual(['ckpt']);
  });

  it('kill -9 between its two renames leaves the complete old and new copies; recovery puts the new one in place', async () => {
    const parent = path.join(root, 'crash');
    const dir = path.join(parent, 'ckpt');
    await writeDirAtomic(dir, async (tmp) => writeFileSync(path.join(tmp, 'value.txt'), 'old'));
    const child = spawnSync(process.execPath, [...NODE_ARGS, 'write-dir', dir, 'new'], { env: { ...process.env, S2CPNET_TEST_CRASH: 'dir-moved-aside:ckpt' }, encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    expect(existsSync(dir)).toBe(false);
    expect(dotted(parent)).toHaveLength(2); // .ckpt.PID.HEX.tmp and .ckpt.PID.HEX.tmp.old
    const report = await recoverDirAtomic(dir);
    expect(read(dir)).toBe('new');
    expect(report.restored).toMatch(/\.ckpt\.\d+\.[0-9a-f]{8}\.tmp$/);
    expect(report.removed).toHaveLength(1);
    expect(readdirSync(parent)).toEqual(['ckpt']);
  });

  it('with only the moved-aside old copy left, recovery restores it', async () => {
    const parent = path.join(root, 'old-only');
    mkdirSync(path.join(parent, '.ckpt.77.0123abcd.tmp.old'), { recursive: true });
    writeFileSync(path.join(parent, '.ckpt.77.0123abcd.tmp.old', 'value.txt'), 'old');
    await recoverDirAtomic(path.join(parent, 'ckpt'));
    expect(read(path.join(parent, 'ckpt'))).toBe('old');
    expect(dotted(parent)).toEqual([]);
  });

  it('a temp folder of a first write is used only when isComplete says so; leftovers beside an existing folder are removed', async () => {
    const parent = path.join(root, 'first');
    const half = path.join(parent, '.a.77.0123abcd.tmp');
    mkdirSync(half, { recursive: true });
    writeFileSync(path.join(half, 'value.txt'), 'maybe');
    expect((await recoverDirAtomic(path.join(parent, 'a'))).restored).toBe(null);
    expect(existsSync(path.join(parent, 'a'))).toBe(false);
    mkdirSync(path.join(parent, '.b.77.0123abcd.tmp'));
    writeFileSync(path.join(parent, '.b.77.0123abcd.tmp', 'value.txt'), 'done');
    mkdirSync(path.join(parent, 'c'));
    mkdirSync(path.join(parent, '.c.77.0123abcd.tmp.old'));
    writeFileSync(path.join(parent, '.d.txt.77.0123abcd.tmp'), 'partial file');
    writeFileSync(path.join(parent, '.not-ours'), 'kept');
    const reports = await recoverAtomicLeftovers(parent, { isComplete: (p) => existsSync(path.join(p, 'value.txt')) });
    expect(reports.filter((r) => r.restored)).toHaveLength(1);
    expect(read(path.join(parent, 'b'))).toBe('done');
    expect(existsSync(path.join(parent, 'd.txt'))).toBe(false);
    expect(dotted(parent)).toEqual(['.not-ours']);
  });
});

describe('acquireLock', () => {
  let sleeper: ChildProcess | null = null;
  afterAll(() => {
    sleeper?.kill('SIGKILL');
  });

  it('is exclusive within a process and released by release()', () => {
    const file = path.join(root, 'one.lock');
    const lock = acquireLock(file, { what: 'run one' });
    const owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    expect(owner.pid).toBe(process.pid);
    expect(owner.host).toBe(os.hostname());
    expect(Date.parse(owner.started)).toBeGreaterThan(0);
    const error = (() => {
      try {
        acquireLock(file, { what: 'run one' });
      } catch (e) {
        return e;
      }
    })();
    expect(S2CPNetError.isInstance(error) && error.code).toBe('CONFIG');
    expect(String((error as Error).message)).toMatch(new RegExp(`run one is in use by another training process \\(pid ${process.pid} `));
    expect(() => acquireLock(path.relative(process.cwd(), file))).toThrow(/in use/); // another spelling of the same file
    lock.release();
    lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('refuses the lock of a live process and of another host; takes over a dead pid and an unreadable old lock, saying so', async () => {
    sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => sleeper!.once('spawn', r));
    const file = path.join(root, 'two.lock');
    writeFileSync(file, JSON.stringify({ pid: sleeper.pid, host: os.hostname(), started: 'x' }));
    expect(() => acquireLock(file)).toThrow(new RegExp(`pid ${sleeper.pid} `));
    writeFileSync(file, JSON.stringify({ pid: deadPid(), host: 'elsewhere', started: 'x' }));
    expect(() => acquireLock(file)).toThrow(/on elsewhere.*another machine/);

    const dead = deadPid();
    writeFileSync(file, JSON.stringify({ pid: dead, host: os.hostname(), started: 'x' }));
    const stale: (LockOwner | null)[] = [];
    const lock = acquireLock(file, { onStale: (o) => void stale.push(o) });
    expect(stale.map((o) => o?.pid)).toEqual([dead]);
    expect(lock.tookOverFrom?.pid).toBe(dead);
    expect((JSON.parse(readFileSync(file, 'utf8')) as LockOwner).pid).toBe(process.pid);
    lock.release();

    writeFileSync(file, '{"pid": 12');
    const old = new Date(Date.now() - 60_000);
    (await import('node:fs')).utimesSync(file, old, old);
    const taken = acquireLock(file, { onStale: (o) => void stale.push(o) });
    expect(stale).toHaveLength(2);
    taken.release();
    expect(readdirSync(root).filter((n) => n.startsWith('two.lock'))).toEqual([]);
  });

  it('is released when its process exits or dies of SIGTERM; a kill -9 leaves a stale lock that is taken over', async () => {
    const file = path.join(root, 'three.lock');
    const exited = spawnSync(process.execPath, [...NODE_ARGS, 'lock-exit', file]);
    expect(exited.status).toBe(3);
    expect(existsSync(file)).toBe(false);

    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const child = spawn(process.execPath, [...NODE_ARGS, 'lock-sleep', file], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
      expect(existsSync(file)).toBe(true);
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
      child.kill(signal);
      expect(await ended).toBe(signal); // still dies of the signal, as without a lock
      if (signal === 'SIGTERM') expect(existsSync(file)).toBe(false);
      else {
        expect(existsSync(file)).toBe(true);
        const stale: (LockOwner | null)[] = [];
        acquireLock(file, { onStale: (o) => void stale.push(o) }).release();
        expect(stale[0]?.pid).toBe(child.pid);
      }
    }
  });
});
