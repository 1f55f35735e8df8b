import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, constants as fsConstants, existsSync, mkdtempSync, rmSync, symlinkSync, openSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '@s2cpnet/core/testing';
import { CheckpointError } from '@s2cpnet/core';
import { Vocabulary } from '@s2cpnet/data';
import { defaultFusions } from '@s2cpnet/fusion';
import { buildS2CPNet, type ComponentFactories } from './s2cpnet';
import { loadCheckpoint, resolveCheckpointDir, saveCheckpoint } from './checkpoint';
import { Adam } from './optimizer';
import { tinyConfig } from './testing/tiny';
import { PRESET_NAMES } from './presets';
import { minimumParameterCounts } from './parameter-bounds';

// Checkpoints are untrusted input: a folder downloaded from anywhere. Loading one must never read outside the
// folder, never echo another file's content, never trust a size before checking it against the files on disk,
// and never block on a FIFO or a device.

const repo = path.resolve(__dirname, '../../..');
const SECRET = 'TOP-SECRET-CONTENT-3141';
let root = '';
let base = '';
let counter = 0;
const classes = ['plane', 'river', 'tree'];

function vocabulary(): Vocabulary {
  return Vocabulary.fromJSON({
    format: 's2cpnet-vocabulary',
    version: 1,
    settings: { minWordFreq: 1, maxCaptionWords: 25, lowerCase: true, countedOn: 'train' },
    words: ['<pad>', '<start>', '<end>', '<unk>', 'a', 'plane', 'river', 'tree', 'near', 'the'],
  } as never);
}

beforeAll(async () => {
  await useBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 's2c-hostile-'));
  base = path.join(root, 'base');
  const model = buildS2CPNet(tinyConfig('s2cpnet', 2), { vocabSize: 10, numClasses: classes.length });
  const optimizer = new Adam({ learningRate: 1e-3 });
  await saveCheckpoint(base, {
    model,
    vocabulary: vocabulary(),
    classNames: classes,
    optimizer,
    training: { epoch: 1, batchInEpoch: 0, step: 3, learningRate: 1e-3, schedule: { best: null, bestEpoch: 0, epochsSinceImprovement: 0, epochsSinceDecay: 0, options: { factor: 0.5, patience: 2, stopPatience: 5 } }, run: {}, history: [], finished: false },
  });
  model.dispose();
  // A file outside every checkpoint folder that a hostile checkpoint would like to read (or print).
  await fsp.writeFile(path.join(root, 'secret.txt'), `${SECRET}\n`);
  await fsp.writeFile(path.join(root, 'secret.json'), JSON.stringify({ format: 's2cpnet-vocabulary', secret: SECRET }));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A fresh copy of the good checkpoint, `edit`ed. */
async function variant(edit?: (dir: string) => Promise<void> | void): Promise<string> {
  const dir = path.join(root, `v${++counter}`, 'ckpt');
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  await fsp.cp(base, dir, { recursive: true });
  await edit?.(dir);
  return dir;
}

async function editJson(file: string, edit: (json: Record<string, any>) => void): Promise<void> {
  const json = JSON.parse(await fsp.readFile(file, 'utf8'));
  edit(json);
  await fsp.writeFile(file, JSON.stringify(json));
}

async function loadError(dir: string): Promise<Error> {
  const result = await loadCheckpoint(dir).then(
    (loaded) => {
      loaded.model.dispose();
      return null;
    },
    (error: unknown) => error,
  );
  expect(result, 'the checkpoint should have been refused').toBeInstanceOf(Error);
  return result as Error;
}

/** Loads with a fusion factory map that counts model builds: a refusal "before building" leaves it at 0. */
async function loadErrorCountingBuilds(dir: string): Promise<{ error: Error; builds: number }> {
  let builds = 0;
  const fusion = Object.fromEntries(
    Object.entries(defaultFusions).map(([type, factory]) => [type, (config: never, context: never) => ((builds += 1), (factory as (c: never, x: never) => unknown)(config, context))]),
  );
  const factories = { fusion } as ComponentFactories;
  const error = await loadCheckpoint(dir, { factories }).then(
    (loaded) => (loaded.model.dispose(), null),
    (e: unknown) => e,
  );
  expect(error, 'the checkpoint should have been refused').toBeInstanceOf(Error);
  return { error: error as Error, builds };
}

function expectRefused(error: Error, pattern: RegExp): void {
  expect(error).toBeInstanceOf(CheckpointError);
  expect(error.message).toMatch(pattern);
  expect(error.message).not.toContain(SECRET);
}

describe('a checkpoint cannot read outside its folder', () => {
  it('the good checkpoint loads (sanity)', async () => {
    const loaded = await loadCheckpoint(base);
    expect(loaded.classNames).toEqual(classes);
    expect(loaded.optimizerState).not.toBeNull();
    expect(loaded.training?.step).toBe(3);
    loaded.model.dispose();
  });

  for (const [entry, target] of [
    ['vocabulary', '../../secret.json'],
    ['nouns', '../../secret.json'],
    ['training', '../../secret.txt'],
    ['weights', '../../secret'],
    ['optimizer', '../../secret'],
    ['vocabulary', '<absolute path>'],
  ] as const) {
    it(`refuses $.files.${entry} = ${JSON.stringify(target)}, naming the entry, without printing the file`, async () => {
      const dir = await variant((d) =>
        editJson(path.join(d, 'checkpoint.json'), (json) => {
          json.files[entry] = target === '<absolute path>' ? path.join(root, 'secret.json') : target;
        }),
      );
      if (entry === 'weights' || entry === 'optimizer') {
        await fsp.writeFile(path.join(root, 'secret.json'), JSON.stringify({ format: 's2cpnet-tensors', version: 1, byteLength: 0, tensors: [], secret: SECRET }));
        await fsp.writeFile(path.join(root, 'secret.bin'), '');
      }
      expectRefused(await loadError(dir), new RegExp(`\\$\\.files\\.${entry}\\b.*outside the checkpoint folder`));
      await fsp.writeFile(path.join(root, 'secret.json'), JSON.stringify({ format: 's2cpnet-vocabulary', secret: SECRET }));
    });
  }

  it('refuses a file of the folder that is a symbolic link to a file outside it', async () => {
    const dir = await variant(async (d) => {
      await fsp.rm(path.join(d, 'nouns.json'));
      symlinkSync(path.join(root, 'secret.json'), path.join(d, 'nouns.json'));
    });
    expectRefused(await loadError(dir), /\$\.files\.nouns\b.*outside the checkpoint folder/);
    const weightsLink = await variant(async (d) => {
      await fsp.rename(path.join(d, 'weights.bin'), path.join(root, `outside-${counter}.bin`));
      symlinkSync(path.join(root, `outside-${counter}.bin`), path.join(d, 'weights.bin'));
    });
    expectRefused(await loadError(weightsLink), /\$\.files\.weights\b.*outside the checkpoint folder/);
  });

  it('a link inside the folder to another file of the folder is fine', async () => {
    const dir = await variant(async (d) => {
      await fsp.rename(path.join(d, 'nouns.json'), path.join(d, 'classes.json'));
      symlinkSync('classes.json', path.join(d, 'nouns.json'));
    });
    const loaded = await loadCheckpoint(dir);
    expect(loaded.classNames).toEqual(classes);
    loaded.model.dispose();
  });

  it('never prints the content of a file that is not valid JSON', async () => {
    for (const file of ['checkpoint.json', 'vocabulary.json', 'nouns.json', 'weights.json', 'training.json']) {
      const dir = await variant((d) => fsp.writeFile(path.join(d, file), `${SECRET}: not json {"a": 1}\n`));
      const error = await loadError(dir);
      expect(error, file).toBeInstanceOf(CheckpointError);
      expect(error.message, file).toMatch(/not valid JSON/);
      expect(error.message, file).not.toContain(SECRET);
      expect(error.message, file).not.toContain('TOP-');
    }
  });

  it('maps a malformed vocabulary to a CheckpointError without echoing its values', async () => {
    const dir = await variant((d) => editJson(path.join(d, 'vocabulary.json'), (json) => void (json.format = SECRET)));
    expectRefused(await loadError(dir), /vocabulary\.json.*\$\.format/);
  });
});

describe('sizes are checked before they are trusted', () => {
  it('refuses config.fusion.dim 1e6 at once, naming the field', async () => {
    const dir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.config.fusion.dim = 1e6)));
    const started = Date.now();
    expectRefused(await loadError(dir), /\$\.fusion\.dim\b/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses captionDecoder.numLayers 1e5 at once, naming the field', async () => {
    const dir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.config.captionDecoder.numLayers = 1e5)));
    const started = Date.now();
    expectRefused(await loadError(dir), /\$\.captionDecoder\.numLayers\b/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses a config within the field limits that implies far more parameters than weights.json holds, before building it', async () => {
    const dir = await variant((d) =>
      editJson(path.join(d, 'checkpoint.json'), (json) => {
        json.config.captionDecoder.dim = 1024;
        json.config.captionDecoder.numLayers = 8;
      }),
    );
    const started = Date.now();
    expectRefused(await loadError(dir), /\$\.config\.captionDecoder.*at least [\d,]+ parameters.*weights\.json holds [\d,]+/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('bounds the sizes a config may set over those the model fills in (vocabSize, numClasses, memoryWidth)', async () => {
    const vocab = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.config.captionDecoder.vocabSize = 1e9)));
    expectRefused(await loadError(vocab), /\$\.captionDecoder\.vocabSize\b/);
    const classesDir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.config.categoryHead.numClasses = 500_000)));
    const started = Date.now();
    expectRefused(await loadError(classesDir), /\$\.config\.categoryHead: this config implies at least/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('the parameter lower bounds never exceed the real count (every preset, and the reference variants)', () => {
    const configs = PRESET_NAMES.map((name) => tinyConfig(name, 1));
    const s2 = tinyConfig('s2cpnet', 1);
    configs.push(
      { ...s2, fusion: { ...s2.fusion, type: 'cvff-reference' }, captionDecoder: { ...s2.captionDecoder, type: 'gated-reference' } },
      { ...s2, categoryHead: { type: 'next-noun', dim: 32, numHeads: 4, vocabSize: 10 }, captionDecoder: { ...s2.captionDecoder, type: 'plain', numLayers: 2 } },
    );
    for (const config of configs) {
      const model = buildS2CPNet(config, { vocabSize: 10, numClasses: classes.length });
      const bounds = minimumParameterCounts(config, { vocabSize: 10, numClasses: model.numClasses });
      const implied = bounds.reduce((sum, b) => sum + b.parameters, 0);
      const actual = model.namedWeights().reduce((sum, w) => sum + (w.variable.shape as number[]).reduce((a, b) => a * b, 1), 0);
      expect(implied, config.name).toBeLessThanOrEqual(actual);
      expect(implied, config.name).toBeGreaterThan(actual / 10); // and they are not vacuous
      model.dispose();
    }
  });

  it('refuses numClasses or vocabSize that do not match the noun and vocabulary files', async () => {
    const classesDir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.numClasses = classes.length + 1)));
    expectRefused(await loadError(classesDir), /\$\.numClasses\b/);
    const hugeDir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.numClasses = 1e9)));
    expectRefused(await loadError(hugeDir), /\$\.numClasses\b/);
    const vocabDir = await variant((d) => editJson(path.join(d, 'checkpoint.json'), (json) => void (json.vocabSize = 1e12)));
    expectRefused(await loadError(vocabDir), /vocabSize|another vocabulary/);
  });

  it('refuses weights.bin that is a link to /dev/zero (a device, not a regular file)', async () => {
    if (!existsSync('/dev/zero')) return;
    const dir = await variant(async (d) => {
      await fsp.rm(path.join(d, 'weights.bin'));
      symlinkSync('/dev/zero', path.join(d, 'weights.bin'));
    });
    const started = Date.now();
    const error = await loadError(dir);
    expectRefused(error, /weights\.bin|\$\.files\.weights/);
    expect(error.message).toMatch(/outside the checkpoint folder|not a regular file/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  const mkfifo = (file: string): boolean => {
    try {
      execFileSync('mkfifo', [file]);
      return true;
    } catch {
      return false;
    }
  };
  /** Opens the writing end without blocking, so a reader stuck on the FIFO (a failing run) is released. */
  const release = (file: string) => {
    try {
      closeSync(openSync(file, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
    } catch {
      // no reader waiting
    }
  };

  for (const file of ['weights.bin', 'vocabulary.json', 'checkpoint.json']) {
    it(`refuses ${file} that is a FIFO without blocking`, async () => {
      const dir = await variant((d) => fsp.rm(path.join(d, file)));
      if (process.platform === 'win32' || !mkfifo(path.join(dir, file))) return;
      const timer = setInterval(() => release(path.join(dir, file)), 2000);
      try {
        const started = Date.now();
        expectRefused(await loadError(dir), /not a regular file/);
        expect(Date.now() - started).toBeLessThan(1500);
      } finally {
        clearInterval(timer);
        release(path.join(dir, file));
      }
    }, 10_000);
  }

  it('refuses a folder where a file is expected', async () => {
    const dir = await variant(async (d) => {
      await fsp.rm(path.join(d, 'nouns.json'));
      await fsp.mkdir(path.join(d, 'nouns.json'));
    });
    expectRefused(await loadError(dir), /nouns\.json.*not a regular file/);
  });

  it('refuses weights.bin shorter or longer than weights.json says, before building the model', async () => {
    for (const delta of [-8, 8]) {
      const dir = await variant(async (d) => {
        const bin = await fsp.readFile(path.join(d, 'weights.bin'));
        await fsp.writeFile(path.join(d, 'weights.bin'), delta < 0 ? bin.subarray(0, bin.length + delta) : Buffer.concat([bin, Buffer.alloc(delta)]));
      });
      const { error, builds } = await loadErrorCountingBuilds(dir);
      expectRefused(error, /weights\.bin.*expected \d+ bytes.*found \d+/s);
      expect(builds, 'model built before the sizes were checked').toBe(0);
    }
  });

  it('refuses a weights.json whose tensors do not add up to its byteLength', async () => {
    const dir = await variant(async (d) => {
      const bin = await fsp.readFile(path.join(d, 'weights.bin'));
      await fsp.writeFile(path.join(d, 'weights.bin'), Buffer.concat([bin, Buffer.alloc(64)]));
      await editJson(path.join(d, 'weights.json'), (json) => void (json.byteLength += 64));
    });
    expectRefused(await loadError(dir), /weights\.json.*tensors.*bytes/);
    const overlapping = await variant((d) =>
      editJson(path.join(d, 'weights.json'), (json) => {
        const first = json.tensors[0];
        for (let i = 0; i < 1000; i++) json.tensors.push({ ...first, name: `extra${i}` });
      }),
    );
    expectRefused(await loadError(overlapping), /weights\.json.*tensors.*bytes/);
  });

  it('refuses a bad tensor shape in weights.json', async () => {
    const dir = await variant((d) => editJson(path.join(d, 'weights.json'), (json) => void (json.tensors[0].shape = [1e9, 1e9])));
    const { error, builds } = await loadErrorCountingBuilds(dir);
    expectRefused(error, /weights\.json at \$\.tensors\[0\]/);
    expect(builds).toBe(0);
  });

  it('refuses a JSON file larger than the JSON limit without reading it', async () => {
    const dir = await variant(async (d) => {
      // Sparse: takes no disk space.
      await fsp.truncate(path.join(d, 'vocabulary.json'), 65 * 2 ** 20);
    });
    expectRefused(await loadError(dir), /vocabulary\.json.*larger than/);
  });
});

describe('checkpoint references', () => {
  it('accepts a weights package folder (package.json naming its checkpoint) as well as the checkpoint folder', async () => {
    expect(resolveCheckpointDir('weights/ucm-mobilenet', repo)).toBe(path.join(repo, 'weights/ucm-mobilenet/checkpoint'));
    expect(resolveCheckpointDir('@s2cpnet/weights-ucm-mobilenet', repo)).toBe(path.join(repo, 'weights/ucm-mobilenet/checkpoint'));
    expect(resolveCheckpointDir('weights/ucm-mobilenet/checkpoint', repo)).toBe(path.join(repo, 'weights/ucm-mobilenet/checkpoint'));

    const pkg = path.join(root, 'pkg');
    await fsp.mkdir(pkg, { recursive: true });
    await fsp.cp(base, path.join(pkg, 'model'), { recursive: true });
    await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'my-weights', s2cpnet: { checkpoint: 'model' } }));
    const loaded = await loadCheckpoint('pkg', { cwd: root });
    expect(loaded.dir).toBe(path.join(pkg, 'model'));
    expect(loaded.classNames).toEqual(classes);
    loaded.model.dispose();
  });

  it('loads the released checkpoint by its package folder (weights/ucm-mobilenet), its config naming no pretrained weights', async () => {
    const loaded = await loadCheckpoint('weights/ucm-mobilenet', { cwd: repo });
    expect(loaded.dir).toBe(path.join(repo, 'weights/ucm-mobilenet/checkpoint'));
    expect(loaded.model.config.encoderWeights ?? null).toBeNull();
    expect(loaded.classNames.length).toBe(loaded.model.numClasses);
    loaded.model.dispose();
  }, 60_000);

  it('refuses a package.json whose checkpoint lies outside the package', async () => {
    const pkg = path.join(root, 'pkg-evil');
    await fsp.mkdir(pkg, { recursive: true });
    await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'evil', s2cpnet: { checkpoint: '../base' } }));
    const error = await loadError(pkg);
    expectRefused(error, /\$\.s2cpnet\.checkpoint\b.*outside the package folder/);
  });

  it('a folder that is neither a checkpoint nor a weights package is refused clearly', async () => {
    const empty = path.join(root, 'empty');
    await fsp.mkdir(empty, { recursive: true });
    expectRefused(await loadError(empty), /not a checkpoint \(no checkpoint\.json/);
  });

  it('does not need the pretrained encoder weights named in the config (the checkpoint holds every weight)', async () => {
    const dir = await variant((d) =>
      editJson(path.join(d, 'checkpoint.json'), (json) => void (json.config.encoderWeights = { path: path.join(root, 'no-such-weights', 'model.json') })),
    );
    const loaded = await loadCheckpoint(dir);
    const reference = await loadCheckpoint(base);
    const a = loaded.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    const b = reference.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    expect(a).toEqual(b);
    loaded.model.dispose();
    reference.model.dispose();
  });
});
