#!/usr/bin/env node
import { main } from './main';
import { wasmThreadsPreloaded } from './backend';
import { relaunchWithWasmThreads, shouldRelaunchForThreads } from './relaunch';

const argv = process.argv.slice(2);

if (shouldRelaunchForThreads(argv)) {
  // Multi-threaded wasm needs a preload that must run before anything else: restart with it.
  relaunchWithWasmThreads(argv).then((code) => {
    process.exitCode = code;
  });
} else {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\ns2cpnet: interrupt received: saving state and stopping (press Ctrl-C again to quit at once)\n');
    controller.abort();
  });

  main(argv, { signal: controller.signal }).then(
    (code) => finish(code),
    (error: unknown) => {
      process.stderr.write(`s2cpnet: ${String(error)}\n`);
      finish(1);
    },
  );
}

function finish(code: number): void {
  process.exitCode = code;
  // The threaded wasm build's worker threads keep the event loop alive after the work is done. stdout and stderr
  // are synchronous for files and pipes on Linux and for terminals, so nothing written is lost by exiting here.
  if (wasmThreadsPreloaded()) process.exit(code);
}
