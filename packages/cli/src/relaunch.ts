import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestedThreads, wasmThreadsPreloaded } from './backend';
import { takeGlobalFlags } from './main';

/** Commands that compute with TensorFlow.js (the others never start a backend). */
const TFJS_COMMANDS = new Set(['demo', 'prepare', 'train', 'evaluate', 'caption', 'bench', 'doctor', 'worker']);

/** Set in the relaunched child, so a child whose preload did not take never relaunches again. */
const RELAUNCHED = 'S2CPNET_RELAUNCHED';

/**
 * Whether the `s2cpnet` executable should restart itself with the wasm-threads preload: a TensorFlow.js command,
 * more than one thread wanted (`--threads`, `S2CPNET_THREADS`, default one per core), a backend that may be wasm,
 * and not already preloaded or relaunched. `S2CPNET_THREADS=1` (or `--threads 1`) keeps one process.
 */
export function shouldRelaunchForThreads(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[RELAUNCHED] === '1' || wasmThreadsPreloaded()) return false;
  let flags: ReturnType<typeof takeGlobalFlags>;
  try {
    flags = takeGlobalFlags([...argv]);
  } catch {
    return false; // main() reports the bad flag
  }
  const command = flags.rest[0];
  if (command === undefined || !TFJS_COMMANDS.has(command) || flags.rest.includes('--help') || flags.rest.includes('-h')) return false;
  const backend = flags.backend ?? env.S2CPNET_BACKEND;
  if (backend === 'cpu' || backend === 'tensorflow') return false;
  try {
    return requestedThreads(flags.threads, env) > 1;
  } catch {
    return false;
  }
}

/** Path of the preload shipped with this package (`@s2cpnet/cli/wasm-threads`). */
export function wasmThreadsPreloadPath(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'wasm-threads.cjs');
}

/**
 * Runs this same command in a child node process that has the preload, with inherited stdio, and resolves to its
 * exit code. Ctrl-C reaches the child through the terminal's process group; the parent only waits for it (the
 * child saves its state and exits); SIGTERM is passed on. The child is connected by an IPC channel: when the parent
 * dies (even by `kill -9`), the channel closes and the child stops too (see {@link exitWithParent}).
 * `options.script` (default: this process's script) is for tests.
 */
export function relaunchWithWasmThreads(argv: readonly string[], options: { script?: string } = {}): Promise<number> {
  const script = options.script ?? process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, '--require', wasmThreadsPreloadPath(), script, ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [RELAUNCHED]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onTerm = forward('SIGTERM');
  const onInt = () => {}; // the child got the same SIGINT from the terminal
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      process.stderr.write(`s2cpnet: could not restart with wasm threads (${error.message})\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

let watchingParent = false;

/**
 * In a relaunched child: stop when the parent `s2cpnet` process is gone. The parent holds the other end of an IPC
 * channel; when it dies (however: `kill -9` included) the channel closes and this process sends itself SIGTERM, so
 * a command that handles SIGTERM (train: saves last/ and releases its run folder) stops cleanly and any other dies
 * of it; if it has not exited 60 s later, it exits. The channel does not keep the process alive. Returns whether it
 * is watching (false outside a relaunched child). Called when this module loads.
 */
export function exitWithParent(env: NodeJS.ProcessEnv = process.env): boolean {
  if (watchingParent) return true;
  if (env[RELAUNCHED] !== '1' || !process.channel) return false;
  watchingParent = true;
  process.once('disconnect', () => {
    process.stderr.write('s2cpnet: the parent process is gone: stopping\n');
    setTimeout(() => process.exit(143), 60_000).unref();
    process.kill(process.pid, 'SIGTERM');
  });
  process.channel.unref();
  return true;
}

exitWithParent();
