import type { Command } from '../command';
import { doctorCommand } from './doctor';
import { demoCommand } from './demo';
import { prepareCommand } from './prepare';
import { trainCommand } from './train';
import { evaluateCommand } from './evaluate';
import { captionCommand } from './caption';
import { captionSceneCommand } from './caption-scene';
import { presetsCommand } from './presets';
import { scoreCommand } from './score';
import { benchCommand } from './bench';
import { exportCommand } from './export';
import { queueCommand } from './queue';
import { workerCommand } from './worker';

/** Every verb of the `s2cpnet` command, in the order `--help` lists them. */
export const commands: readonly Command[] = [demoCommand, prepareCommand, trainCommand, evaluateCommand, captionCommand, captionSceneCommand, exportCommand, queueCommand, workerCommand, scoreCommand, presetsCommand, benchCommand, doctorCommand];
