// Asks Dawn (the `webgpu` npm package) for an adapter and runs one tiny compute shader on it, independently of
// TensorFlow.js, so that bench/gpu/run.sh can tell "no Vulkan driver" from "tfjs failed". Prints one JSON object.
//   node bench/gpu/probe.mjs --webgpu PATH/node_modules/webgpu/index.js [--dawn default|vulkan|opengl|opengles] [--label L]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({ options: { webgpu: { type: 'string' }, dawn: { type: 'string', default: 'default' }, label: { type: 'string', default: '' } } });
const started = performance.now();
const result = { label: values.label, ok: false, dawn: values.dawn, stage: 'import', env: {} };
for (const name of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES', 'EGL_PLATFORM', '__EGL_VENDOR_LIBRARY_FILENAMES', 'LD_LIBRARY_PATH']) {
  if (process.env[name]) result.env[name] = process.env[name];
}
const finish = (extra = {}) => {
  Object.assign(result, extra, { ms: Math.round(performance.now() - started) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
};
const reason = (error) => (error instanceof Error ? error.message : String(error)).split('\n')[0];

try {
  const dawn = await import(pathToFileURL(values.webgpu).href);
  result.stage = 'create';
  if ((values.dawn === 'opengl' || values.dawn === 'opengles') && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
  const gpu = dawn.create(values.dawn === 'default' ? [] : [`backend=${values.dawn}`]);
  result.stage = 'requestAdapter';
  let adapter = null;
  for (const featureLevel of values.dawn.startsWith('opengl') ? ['compatibility'] : ['core', 'compatibility']) {
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...(featureLevel === 'core' ? {} : { featureLevel }) });
    } catch (error) {
      result[`error_${featureLevel}`] = reason(error);
    }
    if (adapter) {
      result.featureLevel = featureLevel;
      break;
    }
  }
  if (!adapter) finish({ reason: 'no adapter' });
  const info = adapter.info ?? {};
  result.adapter = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter };
  result.features = [...adapter.features].sort();
  const limits = {};
  for (const name of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage']) limits[name] = adapter.limits[name];
  result.limits = limits;

  result.stage = 'requestDevice';
  const device = await adapter.requestDevice();
  result.stage = 'compute';
  const { GPUBufferUsage, GPUMapMode } = dawn.globals;
  const input = new Float32Array([1, 2, 3, 4]);
  const storage = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(storage, 0, input);
  const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(4) fn main(@builtin(global_invocation_id) id: vec3u) { x[id.x] = x[id.x] * 2.0 + 1.0; }' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: storage } }] });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(1);
  pass.end();
  encoder.copyBufferToBuffer(storage, 0, readback, 0, 16);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const out = [...new Float32Array(readback.getMappedRange().slice(0))];
  readback.unmap();
  device.destroy();
  const expected = [3, 5, 7, 9];
  if (out.some((v, i) => v !== expected[i])) finish({ reason: `compute shader gave ${JSON.stringify(out)}, expected ${JSON.stringify(expected)}` });
  result.ok = true;
  result.stage = 'done';
  finish();
} catch (error) {
  finish({ reason: reason(error) });
}
