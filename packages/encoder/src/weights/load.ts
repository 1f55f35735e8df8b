import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '@s2cpnet/core';
import type { BackboneEncoder } from '../backbone';
import { ResNet50 } from '../resnet50';
import { readHdf5, type Hdf5Group } from './hdf5';
import { kerasMapping, torchvisionResNetMapping, type ClassifierSource, type UnitSource, type WeightMapping } from './mapping';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from './safetensors';
import { readTfjsLayersWeights } from './tfjs-layers';

/** A weight in a file, decoded on demand. */
export interface ExternalTensor {
  shape: readonly number[];
  read(): Float32Array;
}

/** What a load did. */
export interface WeightLoadReport {
  /** The file or directory read. */
  source: string;
  /** Naming scheme recognised, e.g. `Keras ResNet50 (new layer names)`. */
  scheme: string;
  /** Number of encoder variables written. */
  assignedVariables: number;
  /** Whether the classifier head was loaded. */
  classifierLoaded: boolean;
  /** Keys of the file that were not used and are not known to be ignorable (worth a look). */
  unusedKeys: string[];
}

export interface LoadWeightsOptions {
  /**
   * Check that the encoder's ResNet stride placement matches the weights (Keras: `1x1`, torchvision: `3x3`). The
   * shapes are the same either way, so a mismatch would load silently and give wrong features. Default true.
   */
  checkStridePlacement?: boolean;
}

/** Decoded values, with the encoder variable they go to. */
interface PendingWrite {
  variable: { write(value: tf.Tensor): unknown; shape: readonly (number | null)[] };
  values: Float32Array;
  shape: number[];
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function oihwToHwio(values: Float32Array, shape: readonly number[]): { values: Float32Array; shape: number[] } {
  const [o, i, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(values.length);
  for (let oc = 0; oc < o; oc++)
    for (let ic = 0; ic < i; ic++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((y * w + x) * i + ic) * o + oc] = values[((oc * i + ic) * h + y) * w + x]!;
  return { values: out, shape: [h, w, i, o] };
}

function hwioToOihw(values: Float32Array, shape: readonly number[]): { values: Float32Array; shape: number[] } {
  const [h, w, i, o] = shape as [number, number, number, number];
  const out = new Float32Array(values.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ic = 0; ic < i; ic++)
        for (let oc = 0; oc < o; oc++) out[((oc * i + ic) * h + y) * w + x] = values[((y * w + x) * i + ic) * o + oc]!;
  return { values: out, shape: [o, i, h, w] };
}

/**
 * Validates every weight the mapping needs (presence and shape) before writing any, so a failed load leaves the
 * encoder unchanged; then writes them all.
 */
export function assignMappedWeights(encoder: BackboneEncoder, store: ReadonlyMap<string, ExternalTensor>, mapping: WeightMapping, source: string): WeightLoadReport {
  const used = new Set<string>();
  const missing: string[] = [];
  const problems: string[] = [];
  const pending: PendingWrite[] = [];
  const fetch = (key: string): ExternalTensor | undefined => {
    const tensor = store.get(key);
    if (!tensor) missing.push(key);
    else used.add(key);
    return tensor;
  };
  const expectShape = (key: string, found: readonly number[], expected: readonly (number | null)[]): boolean => {
    if (sameShape(expected, found)) return true;
    problems.push(`'${key}' has shape [${found.join(', ')}], the encoder expects [${expected.join(', ')}]`);
    return false;
  };

  for (const unit of mapping.units) collectUnit(unit);
  const head = encoder.classifierHead;
  let classifierLoaded = false;
  if (head) {
    const candidate = mapping.classifier.find((c) => store.has(c.kernel) && store.has(c.bias));
    if (!candidate) missing.push(`${mapping.classifier.map((c) => c.kernel).join(' or ')} (classifier head; the encoder keeps one)`);
    else {
      collectClassifier(candidate);
      classifierLoaded = true;
    }
  }
  if (missing.length > 0 || problems.length > 0) {
    const lines = [
      ...missing.slice(0, 10).map((k) => `missing '${k}'`),
      ...(missing.length > 10 ? [`... and ${missing.length - 10} more missing`] : []),
      ...problems.slice(0, 10),
      ...(problems.length > 10 ? [`... and ${problems.length - 10} more shape mismatches`] : []),
    ];
    throw new CheckpointError(`${source}: weights do not fit ${encoder.getClassName()} (${mapping.scheme} names):\n  ${lines.join('\n  ')}`);
  }
  for (const p of pending) {
    const value = tf.tensor(p.values, p.shape, 'float32');
    p.variable.write(value);
    value.dispose();
  }
  const unusedKeys = [...store.keys()].filter((k) => !used.has(k) && !mapping.isIgnorable(k));
  return { source, scheme: mapping.scheme, assignedVariables: pending.length, classifierLoaded, unusedKeys };

  function collectUnit(u: UnitSource): void {
    const kernel = fetch(u.kernel);
    const bias = u.bias !== undefined ? fetch(u.bias) : undefined;
    const gamma = fetch(u.gamma);
    const beta = fetch(u.beta);
    const mean = fetch(u.mean);
    const variance = fetch(u.variance);
    if (!kernel || !gamma || !beta || !mean || !variance || (u.bias !== undefined && !bias)) return;
    const channels = u.unit.filters;
    let kernelValues = kernel.read();
    let kernelShape = [...kernel.shape];
    if (u.kernelLayout === 'oihw') {
      if (kernelShape.length !== 4) {
        problems.push(`'${u.kernel}' has shape [${kernelShape.join(', ')}], expected a 4-D [out, in, kh, kw] kernel`);
        return;
      }
      ({ values: kernelValues, shape: kernelShape } = oihwToHwio(kernelValues, kernelShape));
    }
    const ok = [
      expectShape(u.kernel, kernelShape, u.unit.conv.kernel.shape),
      expectShape(u.gamma, gamma.shape, [channels]),
      expectShape(u.beta, beta.shape, [channels]),
      expectShape(u.mean, mean.shape, [channels]),
      expectShape(u.variance, variance.shape, [channels]),
      bias ? expectShape(u.bias!, bias.shape, [channels]) : true,
    ].every(Boolean);
    if (!ok) return;
    let meanValues = mean.read();
    if (bias) {
      // BN(z + b) = gamma (z + b - mean) / sqrt(var + eps) + beta: a conv bias is a shift of the moving mean.
      const b = bias.read();
      meanValues = meanValues.map((m, i) => m - b[i]!);
    }
    pending.push({ variable: u.unit.conv.kernel, values: kernelValues, shape: kernelShape });
    pending.push({ variable: u.unit.bn.gamma, values: gamma.read(), shape: [channels] });
    pending.push({ variable: u.unit.bn.beta, values: beta.read(), shape: [channels] });
    pending.push({ variable: u.unit.bn.movingMean, values: meanValues, shape: [channels] });
    pending.push({ variable: u.unit.bn.movingVariance, values: variance.read(), shape: [channels] });
  }

  function collectClassifier(c: ClassifierSource): void {
    const kernel = fetch(c.kernel)!;
    const bias = fetch(c.bias)!;
    const classifier = encoder.classifierHead!;
    const [inputs, classes] = [encoder.outputChannels, encoder.classifierClasses];
    let values = kernel.read();
    let shape = [...kernel.shape];
    if (c.kernelLayout === 'conv1x1' && shape.length === 4 && shape[0] === 1 && shape[1] === 1) shape = [shape[2]!, shape[3]!];
    if (c.kernelLayout === 'out-in' && shape.length === 2) {
      const [k, ch] = shape as [number, number];
      const transposed = new Float32Array(values.length);
      for (let r = 0; r < k; r++) for (let col = 0; col < ch; col++) transposed[col * k + r] = values[r * ch + col]!;
      values = transposed;
      shape = [ch, k];
    }
    if (expectShape(c.kernel, shape, [inputs, classes]) && expectShape(c.bias, bias.shape, [classes])) {
      pending.push({ variable: classifier.kernel, values, shape });
      pending.push({ variable: classifier.bias!, values: bias.read(), shape: [classes] });
    }
  }
}

function checkStride(encoder: BackboneEncoder, expected: '1x1' | '3x3', what: string, options: LoadWeightsOptions, source: string): void {
  if (options.checkStridePlacement === false || !(encoder instanceof ResNet50)) return;
  if (encoder.strideOn !== expected) {
    throw new CheckpointError(
      `${source}: ${what} weights put the downsampling stride on the ${expected} conv, but the encoder has strideOn '${encoder.strideOn}'. ` +
        `Create it with strideOn: '${expected}' (or pass checkStridePlacement: false if you know the file differs).`,
    );
  }
}

/** Collects `layer/weight` keys from a Keras weight file (a `save_weights` file or a full model's `model_weights`). */
function kerasHdf5Store(root: Hdf5Group): Map<string, ExternalTensor> {
  const weightsRoot = root.get('model_weights')?.kind === 'group' ? (root.get('model_weights') as Hdf5Group) : root;
  const store = new Map<string, ExternalTensor>();
  const layerNames = weightsRoot.attributes['layer_names'];
  const layers = Array.isArray(layerNames) ? (layerNames as string[]) : [...weightsRoot.children().keys()];
  for (const layerName of layers) {
    const layer = weightsRoot.children().get(layerName);
    if (!layer || layer.kind !== 'group') continue;
    const weightNames = layer.attributes['weight_names'];
    const datasets = Array.isArray(weightNames)
      ? (weightNames as string[]).map((w) => ({ name: w, node: layer.get(w) }))
      : layer.datasets().map((d) => ({ name: d.name, node: d }));
    for (const { name, node } of datasets) {
      if (!node || node.kind !== 'dataset') continue;
      const weight = name.split('/').pop()!.replace(/:\d+$/, '');
      store.set(`${layerName}/${weight}`, { shape: node.shape, read: () => node.readFloat32() });
    }
  }
  return store;
}

/**
 * Loads Keras HDF5 weights (the layout of `keras.applications` weight files, e.g. ResNet50's
 * `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`, new or old layer names; or MobileNet's). Keras' ResNet50
 * puts the stride on the 1x1 conv: the encoder must have `strideOn: '1x1'`. Conv biases are folded into the BN
 * moving mean (exact). `file` may be a path or the file's bytes.
 *
 * @example
 * ```ts
 * const encoder = createEncoder({ type: 'resnet50', strideOn: '1x1', normalization: 'caffe-bgr-mean' });
 * await loadKerasHdf5Weights(encoder, 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5');
 * ```
 */
export async function loadKerasHdf5Weights(encoder: BackboneEncoder, file: string | Uint8Array, options: LoadWeightsOptions = {}): Promise<WeightLoadReport> {
  const source = typeof file === 'string' ? file : '<HDF5 bytes>';
  checkStride(encoder, '1x1', 'Keras ResNet50', options, source);
  const h5 = await readHdf5(file, { fileName: source });
  const store = kerasHdf5Store(h5.root);
  return assignMappedWeights(encoder, store, kerasMapping(encoder, (k) => store.has(k)), source);
}

/**
 * Loads a TensorFlow.js layers model directory (`model.json` + weight shards), e.g. Google's MobileNet v1 release,
 * mapping its Keras layer names onto the encoder. Quantized weights (uint8/uint16/float16) are dequantized.
 */
export async function loadTfjsLayersWeights(encoder: BackboneEncoder, dir: string, options: LoadWeightsOptions = {}): Promise<WeightLoadReport> {
  checkStride(encoder, '1x1', 'Keras ResNet50 (TF.js)', options, dir);
  const store = await readTfjsLayersWeights(dir);
  return assignMappedWeights(encoder, store, kerasMapping(encoder, (k) => store.has(k)), dir);
}

/** Metadata key in our safetensors files that records where a ResNet's stride sits. */
const STRIDE_METADATA_KEY = 's2cpnet.strideOn';

/**
 * Loads safetensors weights: torchvision's ResNet50 names (`layer1.0.conv1.weight` [out,in,kh,kw] -> our
 * [kh,kw,in,out], `bn1.running_mean`, ...; `fc.*` used only when the encoder keeps a classifier,
 * `num_batches_tracked` ignored) or, for any encoder, Keras names in Keras layouts (`conv1/kernel`). torchvision puts
 * the stride on the 3x3 conv; a file written by `saveSafetensorsWeights` records its own placement in the metadata.
 */
export async function loadSafetensorsWeights(encoder: BackboneEncoder, file: string | Uint8Array, options: LoadWeightsOptions = {}): Promise<WeightLoadReport> {
  const source = typeof file === 'string' ? file : '<safetensors bytes>';
  const st = await readSafetensors(file, { fileName: source });
  const store = new Map<string, ExternalTensor>();
  for (const [name, tensor] of st.tensors) store.set(name, { shape: tensor.shape, read: () => tensor.readFloat32() });
  const torchNames = store.has('conv1.weight');
  let mapping: WeightMapping;
  if (torchNames && encoder instanceof ResNet50) {
    const recorded = st.metadata[STRIDE_METADATA_KEY];
    checkStride(encoder, recorded === '1x1' ? '1x1' : '3x3', recorded ? 'these' : 'torchvision ResNet50', options, source);
    mapping = torchvisionResNetMapping(encoder);
  } else {
    if (encoder instanceof ResNet50) {
      const recorded = st.metadata[STRIDE_METADATA_KEY];
      checkStride(encoder, recorded === '3x3' ? '3x3' : '1x1', recorded ? 'these' : 'Keras-named ResNet50', options, source);
    }
    mapping = kerasMapping(encoder, (k) => store.has(k));
  }
  return assignMappedWeights(encoder, store, mapping, source);
}

/**
 * The encoder's weights under external names: torchvision names for ResNet50 (PyTorch layouts), Keras names for
 * MobileNetV1. The BN moving statistics are included; ResNet also gets `num_batches_tracked` = 0 so that
 * torchvision's `load_state_dict` accepts the file.
 */
export function exportExternalWeights(encoder: BackboneEncoder): Record<string, SafetensorsInput> {
  const out: Record<string, SafetensorsInput> = {};
  const isResNet = encoder instanceof ResNet50;
  const mapping = isResNet ? torchvisionResNetMapping(encoder) : kerasMapping(encoder, () => false);
  const values = (v: { read(): tf.Tensor }) => v.read().dataSync() as Float32Array;
  for (const u of mapping.units) {
    const kernel = values(u.unit.conv.kernel);
    const shape = u.unit.conv.kernel.shape as number[];
    if (u.kernelLayout === 'oihw') {
      const torchKernel = hwioToOihw(kernel, shape);
      out[u.kernel] = { shape: torchKernel.shape, data: torchKernel.values };
    } else {
      out[u.kernel] = { shape, data: kernel };
    }
    out[u.gamma] = { shape: [u.unit.filters], data: values(u.unit.bn.gamma) };
    out[u.beta] = { shape: [u.unit.filters], data: values(u.unit.bn.beta) };
    out[u.mean] = { shape: [u.unit.filters], data: values(u.unit.bn.movingMean) };
    out[u.variance] = { shape: [u.unit.filters], data: values(u.unit.bn.movingVariance) };
    if (isResNet) out[u.mean.replace(/running_mean$/, 'num_batches_tracked')] = { dtype: 'I64', shape: [], data: [0] };
  }
  const head = encoder.classifierHead;
  if (head) {
    const c = mapping.classifier[0]!;
    const kernel = values(head.kernel);
    const [inputs, classes] = [encoder.outputChannels, encoder.classifierClasses];
    if (c.kernelLayout === 'out-in') {
      const transposed = new Float32Array(kernel.length);
      for (let r = 0; r < inputs; r++) for (let k = 0; k < classes; k++) transposed[k * inputs + r] = kernel[r * classes + k]!;
      out[c.kernel] = { shape: [classes, inputs], data: transposed };
    } else {
      out[c.kernel] = { shape: c.kernelLayout === 'conv1x1' ? [1, 1, inputs, classes] : [inputs, classes], data: kernel };
    }
    out[c.bias] = { shape: [classes], data: values(head.bias!) };
  }
  return out;
}

/** Writes `exportExternalWeights(encoder)` as a safetensors file (atomically), recording ResNet's stride placement. */
export async function saveSafetensorsWeights(encoder: BackboneEncoder, file: string): Promise<void> {
  const metadata: Record<string, string> = { format: 'pt', 's2cpnet.encoder': encoder.getClassName() };
  if (encoder instanceof ResNet50) metadata[STRIDE_METADATA_KEY] = encoder.strideOn;
  await writeSafetensors(file, exportExternalWeights(encoder), metadata);
}
