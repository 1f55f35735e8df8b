import type { Command } from '../command';
import { doctorCommand } from './doctor';
import { demoCommand } from './demo';

/** Every verb of the `s2cpnet` command, in the order `--help` lists them. */
export const commands: readonly Command[] = [demoCommand, doctorCommand];
