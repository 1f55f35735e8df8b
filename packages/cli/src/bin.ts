#!/usr/bin/env node
import { main } from './main';

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  if (interrupts > 1) process.exit(130);
  process.stderr.write('\ns2cpnet: interrupt received: saving state and stopping (press Ctrl-C again to quit at once)\n');
  controller.abort();
});

main(process.argv.slice(2), { signal: controller.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`s2cpnet: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
