import * as tf from '@tensorflow/tfjs-core';
import { onnxModelType } from './onnx-schema';

/** The name of a tensor in a graph under construction. */
export type Value = string;

/** Element types the exporter writes. */
export type OnnxDtype = 'float32' | 'int64' | 'int32' | 'bool' | 'uint8';

/** A dimension: a size, or the name of a dynamic size (`batch`, `past`, ...). */
export type Dim = number | string;

const DATA_TYPE: Record<OnnxDtype, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9 };
const DTYPE_OF: Record<number, OnnxDtype> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool' };

/** An attribute value: an integer is INT, another number FLOAT, a number array INTS, a string STRING. */
export type AttributeValue = number | string | readonly number[] | FloatAttribute | FloatsAttribute;

export interface FloatAttribute {
  readonly float: number;
}
export interface FloatsAttribute {
  readonly floats: readonly number[];
}

/** Marks a number as a FLOAT attribute even when it is an integer (e.g. `epsilon: float(1)`). */
export function float(value: number): FloatAttribute {
  return { float: value };
}

/** A FLOATS attribute. */
export function floats(values: readonly number[]): FloatsAttribute {
  return { floats: values };
}

interface NodeRecord {
  op_type: string;
  input: string[];
  output: string[];
  name: string;
  domain?: string;
  attribute: Record<string, unknown>[];
}

interface TensorRecord {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

interface ValueInfoRecord {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

/**
 * An initializer of a graph under construction, as `OnnxGraph.initializerList` and `initializerData` give it.
 * `origin` is 'constant' for values made by `constant()` / `int64()` (computed tables, scalars, shapes) and
 * 'weight' for the rest (`weight()`, `initializer()`: the model's parameters).
 */
export interface InitializerInfo {
  readonly name: Value;
  readonly dtype: OnnxDtype;
  readonly shape: readonly number[];
  readonly origin: 'weight' | 'constant';
}

/** A node that reads a value: its operator, which of its inputs the value is, and the node's name. */
export interface ValueReader {
  readonly op: string;
  readonly inputIndex: number;
  readonly nodeName: string;
}

/** Options of `OnnxGraph.serialize`. */
export interface SerializeOptions {
  /** Written as the model's `producer_version`. */
  producerVersion?: string;
  /** Key/value strings stored in the file's `metadata_props`. */
  metadata?: Record<string, string>;
  docString?: string;
}

/** The opset every exported graph uses (LayerNormalization needs 17). */
export const OPSET = 17;
/** ONNX IR version of the written files. */
export const IR_VERSION = 8;

/**
 * A small ONNX graph builder: inputs, initializers (weights), nodes and outputs, serialised to an ONNX
 * `ModelProto` with protobufjs. Values are tensor names; every helper returns the name of its output. Exporters of
 * S²CPNet components (and of components a user adds, see `OnnxExportable`) build their part of a graph with it.
 *
 * @example
 * ```ts
 * const g = new OnnxGraph('affine');
 * const x = g.input('x', 'float32', ['batch', 4]);
 * const y = g.add(g.matMul(x, g.constant(new Float32Array(8).fill(0.5), [4, 2])), g.constant([1, 2], [2]));
 * g.output(y, 'y', 'float32', ['batch', 2]);
 * const bytes = g.serialize();
 * ```
 */
export class OnnxGraph {
  readonly name: string;
  private readonly nodes: NodeRecord[] = [];
  private readonly initializers: TensorRecord[] = [];
  private readonly inputs: ValueInfoRecord[] = [];
  private readonly outputs: ValueInfoRecord[] = [];
  private readonly used = new Set<string>();
  private readonly weightNames = new Map<tf.Tensor | object, string>();
  private readonly scopes: string[] = [];
  private readonly constantNames = new Set<string>();
  private counter = 0;
  private weightBytes = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Bytes of all initializers so far. */
  get initializerBytes(): number {
    return this.weightBytes;
  }

  /** Number of nodes so far. */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Runs `fn` with `name/` prefixed to the names it creates (weights and nodes), e.g. `encoder/block3`. */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** A fresh unique name under the current scope. */
  fresh(hint: string): string {
    const base = [...this.scopes, hint].join('/');
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, dtype: OnnxDtype, shape: readonly Dim[]): Value {
    if (this.used.has(name)) throw new Error(`OnnxGraph ${this.name}: name '${name}' is taken`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** Declares `value` a graph output named `name` (through an Identity node when the names differ). */
  output(value: Value, name: string, dtype: OnnxDtype, shape: readonly Dim[]): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`OnnxGraph ${this.name}: output name '${name}' is taken`);
      this.used.add(name);
      this.nodes.push({ op_type: 'Identity', input: [value], output: [name], name: `${name}/identity`, attribute: [] });
    }
    this.outputs.push(valueInfo(name, dtype, shape));
  }

  /** An initializer holding `data` with `shape`. */
  initializer(hint: string, data: Float32Array | Int32Array | BigInt64Array | Uint8Array, shape: readonly number[], dtype?: OnnxDtype): Value {
    const type: OnnxDtype =
      dtype ?? (data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : data instanceof BigInt64Array ? 'int64' : 'bool');
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`OnnxGraph ${this.name}: initializer '${hint}' has ${data.length} values for shape [${shape.join(', ')}]`);
    const name = this.fresh(hint);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.initializers.push({ name, dims: [...shape], data_type: DATA_TYPE[type], raw_data: raw });
    this.weightBytes += raw.byteLength;
    return name;
  }

  /** A float32 constant (a number is a scalar). */
  constant(values: number | readonly number[] | Float32Array, shape?: readonly number[], hint = 'const'): Value {
    const data = typeof values === 'number' ? new Float32Array([values]) : Float32Array.from(values);
    const name = this.initializer(hint, data, shape ?? (typeof values === 'number' ? [] : [data.length]));
    this.constantNames.add(name);
    return name;
  }

  /** An int64 constant (shapes, axes, indices; a number is a scalar). */
  int64(values: number | readonly number[], shape?: readonly number[], hint = 'ints'): Value {
    const list = typeof values === 'number' ? [values] : values;
    const data = BigInt64Array.from(list.map((v) => BigInt(v)));
    const name = this.initializer(hint, data, shape ?? (typeof values === 'number' ? [] : [data.length]), 'int64');
    this.constantNames.add(name);
    return name;
  }

  /** The initializers so far, in the order they were added. */
  initializerList(): InitializerInfo[] {
    return this.initializers.map((t) => ({
      name: t.name,
      dtype: DTYPE_OF[t.data_type]!,
      shape: [...t.dims],
      origin: this.constantNames.has(t.name) ? 'constant' : 'weight',
    }));
  }

  /** The values of the float32 initializer `name` (a copy). */
  initializerData(name: Value): Float32Array {
    const record = this.initializers.find((t) => t.name === name);
    if (!record) throw new Error(`OnnxGraph ${this.name}: no initializer '${name}'`);
    if (record.data_type !== DATA_TYPE.float32) throw new Error(`OnnxGraph ${this.name}: initializer '${name}' is ${DTYPE_OF[record.data_type]}, not float32`);
    const bytes = record.raw_data.slice();
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /** The nodes that read `value`, one entry per input slot that names it. */
  readersOf(value: Value): ValueReader[] {
    const readers: ValueReader[] = [];
    for (const node of this.nodes) node.input.forEach((input, inputIndex) => input === value && readers.push({ op: node.op_type, inputIndex, nodeName: node.name }));
    return readers;
  }

  /**
   * Replaces the initializer `name` by a subgraph that computes it from other initializers (e.g. 8-bit weights and
   * their dequantisation): removes the initializer, runs `build`, which adds initializers and nodes and returns the
   * value holding the same tensor, and names that value `name`, so every reader is unchanged. The new nodes go to
   * the front of the graph (they read initializers only, so the node order stays topological); ONNX Runtime folds
   * such constant subgraphs when it creates a session.
   */
  replaceInitializer(name: Value, build: (g: OnnxGraph) => Value): void {
    const index = this.initializers.findIndex((t) => t.name === name);
    if (index < 0) throw new Error(`OnnxGraph ${this.name}: no initializer '${name}' to replace`);
    const [removed] = this.initializers.splice(index, 1);
    this.weightBytes -= removed!.raw_data.byteLength;
    this.constantNames.delete(name);
    const firstNew = this.nodes.length;
    const result = build(this);
    const added = this.nodes.splice(firstNew);
    const producer = added.find((node) => node.output.includes(result));
    if (!producer) throw new Error(`OnnxGraph ${this.name}: the replacement of '${name}' must end in a node it added (found '${result}')`);
    producer.output = producer.output.map((output) => (output === result ? name : output));
    for (const node of added) node.input = node.input.map((input) => (input === result ? name : input));
    this.nodes.unshift(...added);
  }

  /**
   * A weight read from a tfjs tensor (or layer variable), transposed by `perm` when given. The same tensor with
   * the same `perm` is stored once (the encoder shared by both views, tied weights).
   */
  weight(source: tf.Tensor | { read(): tf.Tensor }, hint: string, perm?: readonly number[]): Value {
    const tensor = source instanceof tf.Tensor ? source : source.read();
    const key = perm ? `${tensor.id}:${perm.join(',')}` : tensor;
    const known = this.weightNames.get(key as never);
    if (known) return known;
    const values = tf.tidy(() => (perm ? tf.transpose(tensor, [...perm]) : tensor).dataSync() as Float32Array);
    const shape = perm ? perm.map((p) => tensor.shape[p]!) : tensor.shape;
    const name = this.initializer(hint, Float32Array.from(values), shape);
    this.weightNames.set(key as never, name);
    return name;
  }

  /** Adds a node `op` and returns its single output. */
  op(op: string, inputs: readonly (Value | '')[], attributes: Record<string, AttributeValue | undefined> = {}, hint?: string): Value {
    return this.opN(op, inputs, 1, attributes, hint)[0]!;
  }

  /** Adds a node `op` with `outputs` outputs. */
  opN(op: string, inputs: readonly (Value | '')[], outputs: number, attributes: Record<string, AttributeValue | undefined> = {}, hint?: string): Value[] {
    const base = this.fresh(hint ?? op.toLowerCase());
    const names = Array.from({ length: outputs }, (_, i) => (i === 0 ? base : this.fresh(`${hint ?? op.toLowerCase()}:${i}`)));
    const attribute = Object.entries(attributes)
      .filter(([, v]) => v !== undefined)
      .map(([name, v]) => attributeRecord(name, v!));
    this.nodes.push({ op_type: op, input: [...inputs], output: names, name: `${base}/${op}`, attribute });
    return names;
  }

  // Conveniences for the common operators (opset 17).
  add(a: Value, b: Value): Value {
    return this.op('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op('Div', [a, b]);
  }
  matMul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b]);
  }
  relu(x: Value): Value {
    return this.op('Relu', [x]);
  }
  sigmoid(x: Value): Value {
    return this.op('Sigmoid', [x]);
  }
  tanh(x: Value): Value {
    return this.op('Tanh', [x]);
  }
  softmax(x: Value, axis = -1): Value {
    return this.op('Softmax', [x], { axis });
  }
  /** Reshape to `shape` (0 copies the input's size, -1 is inferred). */
  reshape(x: Value, shape: readonly number[] | Value): Value {
    return this.op('Reshape', [x, typeof shape === 'string' ? shape : this.int64(shape, undefined, 'shape')]);
  }
  transpose(x: Value, perm: readonly number[]): Value {
    return this.op('Transpose', [x], { perm });
  }
  concat(values: readonly Value[], axis: number): Value {
    return this.op('Concat', values, { axis });
  }
  /** `x · W + b` for a tfjs dense kernel [in, out] and bias [out]. */
  dense(x: Value, kernel: tf.Tensor | { read(): tf.Tensor }, bias: tf.Tensor | { read(): tf.Tensor } | null, hint = 'dense'): Value {
    const y = this.matMul(x, this.weight(kernel, `${hint}/kernel`));
    return bias ? this.add(y, this.weight(bias, `${hint}/bias`)) : y;
  }
  /** Mean over `axes`, keeping them when `keepdims` (ReduceMean takes axes as an attribute up to opset 17). */
  reduceMean(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }
  /** Sum over `axes` (ReduceSum takes axes as an input from opset 13). */
  reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op('ReduceSum', [x, this.int64(axes, undefined, 'axes')], { keepdims: keepdims ? 1 : 0 });
  }
  /** Layer normalisation over the last axis. */
  layerNorm(x: Value, gamma: tf.Tensor | { read(): tf.Tensor }, beta: tf.Tensor | { read(): tf.Tensor }, epsilon: number, hint = 'layerNorm'): Value {
    return this.op('LayerNormalization', [x, this.weight(gamma, `${hint}/gamma`), this.weight(beta, `${hint}/beta`)], { axis: -1, epsilon: float(epsilon) });
  }
  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.op('Unsqueeze', [x, this.int64(axes, undefined, 'axes')]);
  }
  squeeze(x: Value, axes: readonly number[]): Value {
    return this.op('Squeeze', [x, this.int64(axes, undefined, 'axes')]);
  }
  gather(data: Value, indices: Value, axis = 0): Value {
    return this.op('Gather', [data, indices], { axis });
  }
  /** Slice along `axes` from `starts` to `ends` (each an int64 list, or a Value computed in the graph). */
  slice(x: Value, starts: readonly number[] | Value, ends: readonly number[] | Value, axes: readonly number[], steps?: readonly number[]): Value {
    const s = typeof starts === 'string' ? starts : this.int64(starts, undefined, 'starts');
    const e = typeof ends === 'string' ? ends : this.int64(ends, undefined, 'ends');
    const inputs = [x, s, e, this.int64(axes, undefined, 'axes')];
    if (steps) inputs.push(this.int64(steps, undefined, 'steps'));
    return this.op('Slice', inputs);
  }

  /** The `ModelProto` bytes of this graph. */
  serialize(options: SerializeOptions = {}): Uint8Array {
    const type = onnxModelType();
    const message = {
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: OPSET }],
      producer_name: 's2cpnet',
      producer_version: options.producerVersion ?? '',
      doc_string: options.docString ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    const problem = type.verify(message);
    if (problem) throw new Error(`OnnxGraph ${this.name}: invalid model: ${problem}`);
    return type.encode(type.fromObject(message)).finish();
  }
}

function valueInfo(name: string, dtype: OnnxDtype, shape: readonly Dim[]): ValueInfoRecord {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DATA_TYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

const FLOAT = 1;
const INT = 2;
const STRING = 3;
const FLOATS = 6;
const INTS = 7;

function attributeRecord(name: string, value: AttributeValue): Record<string, unknown> {
  if (typeof value === 'string') return { name, type: STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: INT, i: value } : { name, type: FLOAT, f: value };
  if (Array.isArray(value)) {
    if (!value.every((v) => Number.isInteger(v))) throw new Error(`attribute '${name}': INTS must be integers (use floats([...]))`);
    return { name, type: INTS, ints: [...value] };
  }
  if ('float' in (value as object)) return { name, type: FLOAT, f: (value as FloatAttribute).float };
  return { name, type: FLOATS, floats: [...(value as FloatsAttribute).floats] };
}
