import type { BackboneEncoder } from '../backbone';
import type { ConvBn } from '../layers/conv-bn';
import { MobileNetV1 } from '../mobilenet-v1';
import { ResNet50 } from '../resnet50';

/** Memory layout of a convolution kernel in a weight file. */
export type KernelLayout =
  /** [kh, kw, in, out] (Keras, TF.js; ours). Depthwise: [kh, kw, channels, 1]. */
  | 'hwio'
  /** [out, in, kh, kw] (PyTorch). */
  | 'oihw';

/** Where one ConvBn unit's weights live in a weight file. */
export interface UnitSource {
  unit: ConvBn;
  kernel: string;
  kernelLayout: KernelLayout;
  /** Conv bias (Keras' ResNet50 has one before every BN); folded into the BN moving mean on load. */
  bias?: string;
  gamma: string;
  beta: string;
  mean: string;
  variance: string;
}

/** Where the classifier head's weights live. */
export interface ClassifierSource {
  kernel: string;
  /** `in-out`: [C, K] (Keras Dense); `conv1x1`: [1, 1, C, K] (Keras MobileNet); `out-in`: [K, C] (PyTorch Linear). */
  kernelLayout: 'in-out' | 'conv1x1' | 'out-in';
  bias: string;
}

export interface WeightMapping {
  /** Human-readable name of the naming scheme, for messages. */
  scheme: string;
  units: UnitSource[];
  /** Candidates for the classifier head, first match wins. */
  classifier: ClassifierSource[];
  /** Keys of the file that belong to the scheme but are not needed by this encoder (e.g. the head when not kept). */
  isIgnorable(key: string): boolean;
}

const BLOCK_LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function kerasUnit(unit: ConvBn, conv: string, bn: string, options: { bias: boolean; depthwise?: boolean }): UnitSource {
  return {
    unit,
    kernel: `${conv}/${options.depthwise ? 'depthwise_kernel' : 'kernel'}`,
    kernelLayout: 'hwio',
    bias: options.bias ? `${conv}/bias` : undefined,
    gamma: `${bn}/gamma`,
    beta: `${bn}/beta`,
    mean: `${bn}/moving_mean`,
    variance: `${bn}/moving_variance`,
  };
}

/**
 * Keras names of ResNet50 (`keras.applications.ResNet50`): `conv1_conv`, `conv2_block1_1_conv`, ... (`scheme: 'new'`),
 * or the names of the older `resnet50.py` weights: `conv1`, `bn_conv1`, `res2a_branch2a`, `bn2a_branch1`, ...
 * (`scheme: 'old'`). Both have a bias on every conv.
 */
export function kerasResNetMapping(encoder: ResNet50, scheme: 'new' | 'old'): WeightMapping {
  const units: UnitSource[] = [];
  if (scheme === 'new') units.push(kerasUnit(encoder.stem, 'conv1_conv', 'conv1_bn', { bias: true }));
  else units.push(kerasUnit(encoder.stem, 'conv1', 'bn_conv1', { bias: true }));
  encoder.stages.forEach((blocks, s) => {
    blocks.forEach((block, b) => {
      const parts: [ConvBn | null, string, string][] = [
        [block.reduce, '1', 'branch2a'],
        [block.spatial, '2', 'branch2b'],
        [block.expand, '3', 'branch2c'],
        [block.shortcut, '0', 'branch1'],
      ];
      for (const [unit, index, branch] of parts) {
        if (!unit) continue;
        if (scheme === 'new') {
          const prefix = `conv${s + 2}_block${b + 1}_${index}`;
          units.push(kerasUnit(unit, `${prefix}_conv`, `${prefix}_bn`, { bias: true }));
        } else {
          const id = `${s + 2}${BLOCK_LETTERS[b] ?? `_${b}`}_${branch}`;
          units.push(kerasUnit(unit, `res${id}`, `bn${id}`, { bias: true }));
        }
      }
    });
  });
  const classifier: ClassifierSource[] = ['predictions', 'fc1000'].map((name) => ({ kernel: `${name}/kernel`, kernelLayout: 'in-out', bias: `${name}/bias` }));
  return { scheme: `Keras ResNet50 (${scheme} layer names)`, units, classifier, isIgnorable: (key) => /^(predictions|fc1000)\//.test(key) };
}

/** Keras/TF.js names of MobileNetV1: `conv1`, `conv1_bn`, `conv_dw_1`, `conv_dw_1_bn`, `conv_pw_1`, ..., `conv_preds`. */
export function kerasMobileNetMapping(encoder: MobileNetV1): WeightMapping {
  const units: UnitSource[] = [kerasUnit(encoder.stem, 'conv1', 'conv1_bn', { bias: false })];
  encoder.blocks.forEach((block, i) => {
    units.push(kerasUnit(block.depthwiseConv, `conv_dw_${i + 1}`, `conv_dw_${i + 1}_bn`, { bias: false, depthwise: true }));
    units.push(kerasUnit(block.pointwiseConv, `conv_pw_${i + 1}`, `conv_pw_${i + 1}_bn`, { bias: false }));
  });
  return {
    scheme: 'Keras MobileNetV1',
    units,
    classifier: [{ kernel: 'conv_preds/kernel', kernelLayout: 'conv1x1', bias: 'conv_preds/bias' }],
    isIgnorable: (key) => key.startsWith('conv_preds/'),
  };
}

/** torchvision's ResNet50 parameter names (`conv1.weight`, `bn1.running_mean`, `layer1.0.downsample.0.weight`, `fc.weight`). */
export function torchvisionResNetMapping(encoder: ResNet50): WeightMapping {
  const torchUnit = (unit: ConvBn, conv: string, bn: string): UnitSource => ({
    unit,
    kernel: `${conv}.weight`,
    kernelLayout: 'oihw',
    gamma: `${bn}.weight`,
    beta: `${bn}.bias`,
    mean: `${bn}.running_mean`,
    variance: `${bn}.running_var`,
  });
  const units: UnitSource[] = [torchUnit(encoder.stem, 'conv1', 'bn1')];
  encoder.stages.forEach((blocks, s) => {
    blocks.forEach((block, b) => {
      const prefix = `layer${s + 1}.${b}`;
      units.push(torchUnit(block.reduce, `${prefix}.conv1`, `${prefix}.bn1`));
      units.push(torchUnit(block.spatial, `${prefix}.conv2`, `${prefix}.bn2`));
      units.push(torchUnit(block.expand, `${prefix}.conv3`, `${prefix}.bn3`));
      if (block.shortcut) units.push(torchUnit(block.shortcut, `${prefix}.downsample.0`, `${prefix}.downsample.1`));
    });
  });
  return {
    scheme: 'torchvision ResNet50',
    units,
    classifier: [{ kernel: 'fc.weight', kernelLayout: 'out-in', bias: 'fc.bias' }],
    isIgnorable: (key) => key.endsWith('.num_batches_tracked') || key.startsWith('fc.'),
  };
}

/** The Keras mapping of an encoder, choosing ResNet's naming scheme by which names the file holds. */
export function kerasMapping(encoder: BackboneEncoder, has: (key: string) => boolean): WeightMapping {
  if (encoder instanceof MobileNetV1) return kerasMobileNetMapping(encoder);
  if (encoder instanceof ResNet50) return kerasResNetMapping(encoder, has('conv1_conv/kernel') || !has('bn_conv1/gamma') ? 'new' : 'old');
  throw new TypeError(`no Keras weight mapping for encoder class ${encoder.getClassName()}`);
}
