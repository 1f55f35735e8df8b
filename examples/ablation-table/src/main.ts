/**
 * The ablation table: builds every preset of `@s2cpnet/model` (the paper's Baseline1 ... S²CPNet, and lite) and
 * prints what each switches on and how many parameters it has, in total and per component. With `--forward` it
 * also runs a tiny-config version of each preset on a batch of two images and prints the output shapes.
 *
 *   npm start -- [--size paper|tiny] [--forward] [--presets s2cpnet,model3] [--backend wasm|cpu|tensorflow]
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@s2cpnet/cli';
import { PRESETS, PRESET_NAMES, buildS2CPNet, isPresetName, presetConfig, type PresetName, type S2CPNetConfig } from '@s2cpnet/model';

/** Vocabulary and class counts the parameter column assumes (UCM-sized, as `s2cpnet presets` counts). */
export const COUNT_WITH = { vocabSize: 300, numClasses: 90 } as const;

export type ModelSize = 'paper' | 'tiny';

export interface AblationOptions {
  backend?: string;
  /** `paper`: the presets as the paper sizes them (ResNet50 at 224 px, d 512). `tiny`: every part shrunk. */
  size?: ModelSize;
  /** Presets to build, in order. Default all. */
  presets?: readonly string[];
  /** Also run a tiny-config forward pass per preset and report output shapes. */
  forward?: boolean;
  log?: (line: string) => void;
}

export interface ComponentParameters {
  encoder: number;
  semanticEnhancer: number;
  spatialEnhancer: number;
  fusion: number;
  categoryHead: number;
  captionDecoder: number;
}

export interface ForwardShapes {
  /** Tokens the caption decoder attends to: [B, G*G, memory width]. */
  memory: number[];
  /** Next-word logits for a 5-token prefix: [B, 5, V]. */
  captionLogits: number[];
  /** Noun logits [B, K], or null for presets without the noun task. */
  categoryLogits: number[] | null;
}

export interface AblationRow {
  preset: PresetName;
  masks: boolean;
  /** Which halves of the semantic-spatial feature enhancement are on. */
  ssfe: 'both' | 'semantic' | 'spatial' | '-';
  fusion: string;
  nounTask: boolean;
  decoder: string;
  /** model.countParams() */
  parameters: number;
  components: ComponentParameters;
  /** Seconds to build the model (weights are initialised from seeds). */
  buildSeconds: number;
  forward?: ForwardShapes;
}

export interface AblationResult {
  backend: string;
  size: ModelSize;
  rows: AblationRow[];
  table: string;
}

/** A preset with every part shrunk (64 px input, d 32, one layer): fast to build and to run. */
export function tinyPresetConfig(name: PresetName): S2CPNetConfig {
  const config = presetConfig(name);
  const d = 32;
  return {
    ...config,
    encoder:
      config.encoder.type === 'mobilenet-v1'
        ? { type: 'mobilenet-v1', width: 0.25, inputSize: 64, grid: 'native', freeze: 'none' }
        : { type: 'resnet50', inputSize: 64, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 8, freeze: 'none' },
    spatialEnhancer: config.spatialEnhancer ? { ...config.spatialEnhancer, outputChannels: d } : null,
    fusion: { ...config.fusion, dim: d, heads: 4, units: 1, ffnMultiplier: 2 },
    categoryHead: config.categoryHead ? { ...config.categoryHead, dim: d, numHeads: 4 } : null,
    captionDecoder: { ...config.captionDecoder, dim: d, numLayers: 1, numHeads: 4 },
  };
}

function ssfeOf(name: PresetName): AblationRow['ssfe'] {
  const p = PRESETS[name];
  return p.semanticEnhancer && p.spatialEnhancer ? 'both' : p.semanticEnhancer ? 'semantic' : p.spatialEnhancer ? 'spatial' : '-';
}

/** Runs the tiny version of a preset on two seeded random images (and mask views). */
function forwardShapes(name: PresetName, seed: number): ForwardShapes {
  const model = buildS2CPNet(tinyPresetConfig(name), COUNT_WITH);
  let shapes: ForwardShapes | undefined;
  try {
    tf.tidy(() => {
      const s = model.inputSize;
      const images = tf.randomNormal([2, s, s, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
      const masks = model.config.useMaskView ? (tf.randomNormal([2, s, s, 3], 0, 1, 'float32', seed + 1) as tf.Tensor4D) : undefined;
      const memory = model.memory({ images, masks }, { training: false });
      // <start> and four word ids: any ids below the vocabulary size will do for shapes
      const prefix = tf.tensor2d([[1, 4, 5, 6, 7], [1, 8, 9, 10, 11]], [2, 5], 'int32');
      const { logits } = model.captionDecoder.forward(memory, prefix, { training: false });
      shapes = {
        memory: memory.shape,
        captionLogits: logits.shape,
        categoryLogits: model.categoryHead ? model.categoryHead.logits(memory, { training: false }).shape : null,
      };
    });
  } finally {
    model.dispose();
  }
  return shapes!;
}

function formatCount(n: number): string {
  return n === 0 ? '-' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

function formatTable(rows: readonly AblationRow[], withForward: boolean): string {
  const header = ['preset', 'masks', 'SSFE', 'fusion', 'noun task', 'decoder', 'parameters', 'backbone', 'enhancers', 'fusion', 'nouns', 'decoder', 'build s'];
  if (withForward) header.push('memory (tiny)', 'caption logits', 'noun logits');
  const cells = rows.map((r) => {
    const c = r.components;
    const row = [
      r.preset,
      r.masks ? 'yes' : '-',
      r.ssfe,
      r.fusion,
      r.nounTask ? 'yes' : '-',
      r.decoder,
      r.parameters.toLocaleString('en-US'),
      formatCount(c.encoder),
      formatCount(c.semanticEnhancer + c.spatialEnhancer),
      formatCount(c.fusion),
      formatCount(c.categoryHead),
      formatCount(c.captionDecoder),
      r.buildSeconds.toFixed(1),
    ];
    if (withForward && r.forward) {
      row.push(`[${r.forward.memory.join(', ')}]`, `[${r.forward.captionLogits.join(', ')}]`, r.forward.categoryLogits ? `[${r.forward.categoryLogits.join(', ')}]` : '-');
    }
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export async function run(options: AblationOptions = {}): Promise<AblationResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const size = options.size ?? 'paper';
  if (size !== 'paper' && size !== 'tiny') throw new Error(`--size: expected paper or tiny, found ${JSON.stringify(size)}`);
  const names = (options.presets ?? PRESET_NAMES).map((name) => {
    if (!isPresetName(name)) throw new Error(`--presets: unknown preset ${JSON.stringify(name)}; expected some of: ${PRESET_NAMES.join(', ')}`);
    return name;
  });
  const info = await initBackend({ backend: options.backend });
  log(`backend: ${info.backend}; ${size} sizes; counted with a ${COUNT_WITH.vocabSize}-word vocabulary and ${COUNT_WITH.numClasses} noun classes`);

  const rows: AblationRow[] = [];
  for (const [index, name] of names.entries()) {
    const started = performance.now();
    const model = buildS2CPNet(size === 'paper' ? presetConfig(name) : tinyPresetConfig(name), COUNT_WITH);
    const buildSeconds = (performance.now() - started) / 1000;
    const p = PRESETS[name];
    const row: AblationRow = {
      preset: name,
      masks: p.masks,
      ssfe: ssfeOf(name),
      fusion: p.fusion,
      nounTask: p.categoryTask,
      decoder: p.captionDecoder,
      parameters: model.countParams(),
      components: {
        encoder: model.encoder.countParams(),
        semanticEnhancer: model.semanticEnhancer?.countParams() ?? 0,
        spatialEnhancer: model.spatialEnhancer?.countParams() ?? 0,
        fusion: model.fusion.countParams(),
        categoryHead: model.categoryHead?.countParams() ?? 0,
        captionDecoder: model.captionDecoder.countParams(),
      },
      buildSeconds,
    };
    model.dispose();
    if (options.forward) row.forward = forwardShapes(name, index + 1);
    rows.push(row);
    log(`  ${name}: ${row.parameters.toLocaleString('en-US')} parameters (built in ${buildSeconds.toFixed(1)} s)`);
  }
  const table = formatTable(rows, options.forward ?? false);
  log(`\n${table}`);
  if (options.forward) log('\nshapes from the tiny config of each preset: a batch of 2 images of 64 px (2x2 grid), a 5-token caption prefix');
  return { backend: info.backend, size, rows, table };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      size: { type: 'string' },
      presets: { type: 'string' },
      forward: { type: 'boolean', default: false },
    },
  });
  run({
    backend: values.backend,
    size: values.size as ModelSize | undefined,
    presets: values.presets?.split(',').map((s) => s.trim()),
    forward: values.forward,
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
