import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, writeFileAtomic } from '@s2cpnet/core';
import { describeFsError, listImageFolder, parsePixelCount, probeImageFile, renderMaskView, type RgbImage } from '@s2cpnet/data';
import {
  createCaptioner,
  defaultCacheDir,
  isCaptionFailure,
  loadCaptioner,
  openCaptionMasks as openMasks,
  recordedMaskSize,
  type CaptionMasks,
  type CaptionMaskSource,
  type Captioner,
  type CaptionerFailure,
  type CaptionerLoadProgress,
  type CaptionerResult,
  type LoadedCheckpoint,
  type OpenCaptionMasksOptions,
} from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { formatDuration, ProgressBar } from '../progress';
import { writeCaptionReport, type CaptionReportItem } from '../report/caption-report';
import { numberFlag } from './train';
import { chooseRuntime, RUNTIME_FLAGS, SAM_FLAGS, samProviderFromFlags, type SamProvider } from './runtime-package';

export { defaultCacheDir, type CaptionMasks, type CaptionMaskSource, type OpenCaptionMasksOptions };

/**
 * Expands files and folders into image files, sorted within each folder; with `recursive`, subfolders too (sorted,
 * after the folder's own images; links to folders are not followed). A file in a folder that is a symbolic link
 * leading out of the folder given is refused (a file named on the command line is taken as given).
 */
export async function expandImageArguments(items: readonly string[], cwd: string, options: { recursive?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const item of items) {
    const full = path.resolve(cwd, item);
    let stat;
    try {
      stat = await fsp.stat(full);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(code === 'ENOENT' ? 'no such file or folder' : describeFsError(code, 'file or folder'), { file: full, cause: error });
    }
    if (!stat.isDirectory()) {
      out.push(full);
      continue;
    }
    out.push(...(await listImageFolder(full, { recursive: options.recursive, emptyHint: ' (add --recursive to search its subfolders)' })));
  }
  return out;
}

/**
 * Checks every image before any model is loaded: readable, a decodable header, and at most `maxPixels` pixels
 * (default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). The first bad file is an `InputError` naming it.
 */
export async function checkImageFiles(files: readonly string[], options: { maxPixels?: number } = {}): Promise<void> {
  for (const file of files) await probeImageFile(file, options);
}

/**
 * Captions image files with a loaded checkpoint, in batches; results are in the order of `files` (`evaluate` uses
 * it). The pipeline is the library's (`createCaptioner` in `@s2cpnet/model`); the checkpoint stays loaded.
 */
export async function captionFiles(
  checkpoint: LoadedCheckpoint,
  files: readonly string[],
  options: {
    beamSize: number;
    maxLength: number;
    lengthPenalty?: number;
    batchSize: number;
    masks: CaptionMaskSource | CaptionMasks | null;
    /** Largest image accepted, in pixels (default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). */
    maxPixels?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<CaptionerResult[]> {
  if (checkpoint.model.config.useMaskView && !options.masks) throw new Error('captionFiles: this checkpoint reads the mask view, but no mask source was given');
  const captioner = createCaptioner(checkpoint, {
    beam: options.beamSize,
    maxLength: options.maxLength,
    lengthPenalty: options.lengthPenalty,
    batchSize: options.batchSize,
    masks: options.masks,
    maxPixels: options.maxPixels,
  });
  return (await captioner.captionFiles(files, { signal: options.signal, onProgress: options.onProgress })) as CaptionerResult[];
}

/** The decoding flags `caption` and `evaluate` share, for `parseArgs`. */
export const DECODING_FLAGS = {
  beam: { type: 'string' },
  'length-penalty': { type: 'string' },
  'max-length': { type: 'string' },
  'batch-size': { type: 'string' },
} as const;

/** Reads the `DECODING_FLAGS` values, with their defaults (beam 3, no length penalty, 25 words, 8 images per batch). */
export function decodingFlags(values: { beam?: string; 'length-penalty'?: string; 'max-length'?: string; 'batch-size'?: string }) {
  return {
    beamSize: numberFlag(values.beam, '--beam', { integer: true, min: 1 }) ?? 3,
    maxLength: numberFlag(values['max-length'], '--max-length', { integer: true, min: 1 }) ?? 25,
    lengthPenalty: numberFlag(values['length-penalty'], '--length-penalty') ?? 0,
    batchSize: numberFlag(values['batch-size'], '--batch-size', { integer: true, min: 1 }) ?? 8,
  };
}

/**
 * One CSV cell. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula in
 * a spreadsheet (CSV injection): it gets a leading `'`, as OWASP advises. Cells holding a quote, comma, line break
 * or such a prefix are quoted, with quotes doubled (RFC 4180).
 */
export function csvField(value: string): string {
  const formula = /^[=+\-@\t\r]/.test(value);
  const text = formula ? `'${value}` : value;
  return formula || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One output row of `caption`. */
export interface CaptionRow {
  file: string;
  caption: string;
  categories: { name: string; probability: number }[];
}

/** A file `caption --on-error skip` could not caption. */
export interface CaptionFailureRow {
  file: string;
  error: string;
}

/** The `--out x.csv` text: a header line and one line per row, every cell through `csvField`; an `error` column when some failed. */
export function formatCaptionsCsv(rows: readonly (CaptionRow | CaptionFailureRow)[]): string {
  const failed = rows.some((r) => 'error' in r);
  const line = (r: CaptionRow | CaptionFailureRow) =>
    ('error' in r ? [r.file, '', '', ...(failed ? [r.error] : [])] : [r.file, r.caption, r.categories.map((c) => c.name).join(' '), ...(failed ? [''] : [])]).map(csvField).join(',');
  return `file,caption,categories${failed ? ',error' : ''}\n${rows.map(line).join('\n')}\n`;
}

export const CLI_CACHE_HINT = 'set --cache-dir DIR or S2CPNET_CACHE_DIR to a writable folder, or pass --no-cache';

/**
 * The captioner settings every captioning command (`caption`, `caption-scene`, `worker`) takes the same way from the
 * global flags and the `DECODING_FLAGS`, with warnings as `<command>: warning: ...` lines. `noCacheFlag`: whether
 * the command has `--no-cache`, for the hint of an unusable cache folder.
 */
export function cliCaptionerOptions(command: string, context: CommandContext, decoding: ReturnType<typeof decodingFlags>, options: { noCacheFlag?: boolean } = {}) {
  return {
    backend: context.backend?.backend,
    threads: context.backend?.threads,
    cwd: context.cwd,
    beam: decoding.beamSize,
    maxLength: decoding.maxLength,
    lengthPenalty: decoding.lengthPenalty,
    batchSize: decoding.batchSize,
    cacheHint: options.noCacheFlag === false ? 'set --cache-dir DIR or S2CPNET_CACHE_DIR to a writable folder' : CLI_CACHE_HINT,
    warn: (line: string) => context.stderr(`${command}: warning: ${line}\n`),
  };
}

/** Loading progress as one `<command>: ...` line per stage (downloads and checkpoint loading; not the backend). */
export function loadProgressLines(command: string, context: CommandContext): (progress: CaptionerLoadProgress) => void {
  let lastStage = '';
  return (p) => {
    if (p.stage === lastStage || p.stage === 'backend') return;
    lastStage = p.stage;
    context.stderr(`${command}: ${p.message}\n`);
  };
}

/**
 * Opens the mask source of `caption`/`evaluate` (the library's `openCaptionMasks`, with the CLI's flags named in
 * its warnings): precomputed masks with `masksDir`, else masks computed exactly as `prepare` computes them.
 */
export function openCaptionMasks(options: OpenCaptionMasksOptions & { cwd: string }): Promise<CaptionMasks> {
  return openMasks({ cacheHint: CLI_CACHE_HINT, ...options });
}

/** The flags `caption` and `evaluate` share for masks, caches and image limits. */
export const MASK_FLAGS = {
  masks: { type: 'string' },
  'mask-size': { type: 'string' },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
  'max-pixels': { type: 'string' },
  ...SAM_FLAGS,
} as const;

/**
 * The working size masks are computed at: `--mask-size`, else the one the checkpoint records for its training data
 * (`$.masks.workingSize` of checkpoint.json), else (older checkpoints) the `prepare --size` in the manifest of the
 * training data when that folder is still there, else 224 (prepare's default).
 */
export async function maskSizeFor(checkpoint: Pick<LoadedCheckpoint, 'training'> & { masks?: LoadedCheckpoint['masks'] }, flag?: string): Promise<number> {
  const explicit = numberFlag(flag, '--mask-size', { integer: true, min: 16 });
  return explicit ?? recordedMaskSize(checkpoint);
}

/** Reads the `MASK_FLAGS` values into the options of `openCaptionMasks` (less `maskSize` and `cwd`) and `maxPixels`. */
export function maskFlags(values: { masks?: string; 'cache-dir'?: string; 'no-cache'?: boolean; 'max-pixels'?: string }) {
  return {
    masksDir: values.masks === 'sam' ? undefined : values.masks,
    cacheDir: values['no-cache'] ? (false as const) : values['cache-dir'],
    maxPixels: values['max-pixels'] === undefined ? undefined : parsePixelCount(values['max-pixels'], '--max-pixels'),
  };
}

/** Output formats of `caption`. */
const CAPTION_FORMATS = ['text', 'json', 'jsonl', 'csv', 'coco'] as const;
type CaptionFormat = (typeof CAPTION_FORMATS)[number];

/**
 * Integer image ids by file base name, for COCO results: `images[].id` by `file_name` of a COCO caption file, or
 * `images[].cocoid` (else `imgid`) by `filename` of a Karpathy file. A name listed twice with different ids maps to
 * null (ambiguous).
 */
export async function readImageIds(file: string): Promise<Map<string, number | null>> {
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(code ? describeFsError(code, 'annotation file') : `not valid JSON: ${(error as Error).message}`, { file, cause: error });
  }
  const images = (json as { images?: unknown } | null)?.images;
  if (!Array.isArray(images)) throw new InputError('expected a COCO ({images:[{id, file_name}]}) or Karpathy ({images:[{filename, cocoid|imgid}]}) caption file', { file, jsonPath: '$.images' });
  const ids = new Map<string, number | null>();
  images.forEach((entry: Record<string, unknown>, i) => {
    const name = typeof entry?.file_name === 'string' ? entry.file_name : entry?.filename;
    const id = typeof entry?.file_name === 'string' ? entry.id : (entry?.cocoid ?? entry?.imgid);
    if (typeof name !== 'string') throw new InputError('expected a file name (file_name or filename)', { file, jsonPath: `$.images[${i}]` });
    if (!Number.isSafeInteger(id)) throw new InputError(`expected an integer image id (id, cocoid or imgid), found ${JSON.stringify(id)}`, { file, jsonPath: `$.images[${i}]` });
    const base = path.basename(name);
    ids.set(base, ids.has(base) && ids.get(base) !== id ? null : (id as number));
  });
  return ids;
}

const CAPTION_USAGE = `s2cpnet caption --checkpoint DIR|PACKAGE|URL#sha256=HEX FILES_OR_FOLDERS... [options]

Captions TIFF/JPEG/PNG files, and the images in folders (sorted by name), with a checkpoint folder, an installed
weights package (e.g. @s2cpnet/weights-ucm-mobilenet) or a checkpoint archive URL with its sha256.

Options (default in brackets):
  --checkpoint REF        checkpoint folder, weights package name, or http(s) URL#sha256=HEX of a .tgz [required]
  --recursive             also caption images in subfolders of the folders given [off]
  --out FILE              write results to FILE; .json, .jsonl or .csv picks the format [print to stdout]
  --format F              text | json | jsonl | csv | coco [from --out's extension, else text]
                          jsonl writes one line per image as soon as it is captioned; coco writes
                          [{image_id, caption}] (COCO results)
  --annotations FILE      with --format coco: image ids from this COCO or Karpathy caption file, matched by file
                          name [without it: image_id is each image's 1-based position in input order]
  --report FILE.html      also write an HTML report: image, mask view, caption, categories, word attention [none]
  --on-error stop|skip    stop: stop at the first unreadable image, naming it; skip: record it in the output and
                          the summary and go on (exit status 0) [stop]
  --beam K                beam width; 1 decodes greedily [3]
  --length-penalty A      GNMT length-penalty exponent [0]
  --max-length N          most words per caption [25]
  --batch-size N          images per forward pass [8]
  --masks DIR|sam         precomputed mask images named like the images, or sam: compute them with a SAM-class
                          model (needs @s2cpnet/runtime-onnx) as prepare --masks sam did [masks computed as
                          prepare does]
  --sam-encoder FILE      with --masks sam: the SAM image encoder .onnx [required there]
  --sam-decoder FILE      with --masks sam: the SAM prompt encoder + mask decoder .onnx [required there]
  --sam-points N          with --masks sam: points per side of the prompt grid [16]
  --mask-size N           working size masks are computed at [the checkpoint's training data's, else 224]
  --cache-dir DIR         cache folder [S2CPNET_CACHE_DIR, else $XDG_CACHE_HOME/s2cpnet, else ~/.cache/s2cpnet]
  --no-cache              compute masks without a cache [off]
  --max-pixels N          largest image accepted, in pixels [S2CPNET_MAX_IMAGE_PIXELS, else 64000000]
  --runtime R             tfjs | onnx | auto: onnx runs the checkpoint's ONNX export (s2cpnet export --format onnx,
                          or the onnx/ folder a weights package ships) in ONNX Runtime, with the same captions;
                          auto picks onnx when @s2cpnet/runtime-onnx, onnxruntime-node and an export are there [tfjs]
  --ort-provider P        with the onnx runtime: cpu | cuda | webgpu [cpu]

Caches: computed mask views go to <cache folder>/masks, keyed by the sha256 of each image file and the mask
settings; checkpoint archives given by URL are downloaded to <cache folder>/checkpoints/archives and unpacked to
<cache folder>/checkpoints/<sha256>. Delete the folder to clear them.
Progress (with ETA) and warnings go to stderr; an image more than 4x the model's input side is shrunk to it and
captioned as one scene, with a warning.`;

export const captionCommand: Command = {
  name: 'caption',
  summary: 'Caption your own images (TIFF/JPEG/PNG files or folders) with a checkpoint',
  usage: CAPTION_USAGE,
  async run(argv: string[], context: CommandContext) {
    const { values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        checkpoint: { type: 'string' },
        ...MASK_FLAGS,
        ...DECODING_FLAGS,
        out: { type: 'string' },
        format: { type: 'string' },
        annotations: { type: 'string' },
        report: { type: 'string' },
        'on-error': { type: 'string' },
        recursive: { type: 'boolean', default: false },
        ...RUNTIME_FLAGS,
      },
    });
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an installed weights package');
    if (positionals.length === 0) throw new ConfigError('FILES_OR_FOLDERS', 'give at least one image file or folder');
    const runtime = await chooseRuntime(values, values.checkpoint, context.cwd);
    const fromOut = values.out ? (/\.(json|jsonl|csv)$/i.exec(values.out)?.[1]?.toLowerCase() as CaptionFormat | undefined) : undefined;
    if (values.format !== undefined && !(CAPTION_FORMATS as readonly string[]).includes(values.format)) {
      throw new ConfigError('--format', `expected one of ${CAPTION_FORMATS.join(', ')}, found ${JSON.stringify(values.format)}`);
    }
    if (values.out && !values.format && !fromOut) throw new ConfigError('--out', `expected a .json, .jsonl or .csv file name (or give --format), found ${JSON.stringify(values.out)}`);
    const format: CaptionFormat = (values.format as CaptionFormat | undefined) ?? fromOut ?? 'text';
    if (format === 'text' && values.out) throw new ConfigError('--format', 'text goes to stdout; give --out with json, jsonl, csv or coco');
    if (values.annotations && format !== 'coco') throw new ConfigError('--annotations', 'only used with --format coco (for its image ids)');
    if (values.report && !/\.html?$/i.test(values.report)) throw new ConfigError('--report', `expected an .html file name, found ${JSON.stringify(values.report)}`);
    const onError = values['on-error'] ?? 'stop';
    if (onError !== 'stop' && onError !== 'skip') throw new ConfigError('--on-error', `expected stop or skip, found ${JSON.stringify(onError)}`);
    const decoding = decodingFlags(values);
    const flags = maskFlags(values);
    const maskSize = numberFlag(values['mask-size'], '--mask-size', { integer: true, min: 16 });
    const files = await expandImageArguments(positionals, context.cwd, { recursive: values.recursive });
    const shown = (file: string) => path.relative(context.cwd, file) || file;
    // With --on-error stop every image is checked (readable, within the pixel cap) before the model is loaded.
    if (onError === 'stop') await checkImageFiles(files, { maxPixels: flags.maxPixels });
    let imageIds: Map<string, number | null> | null = null;
    if (format === 'coco') {
      if (values.annotations) {
        const annotations = path.resolve(context.cwd, values.annotations);
        imageIds = await readImageIds(annotations);
        for (const file of files) {
          const id = imageIds.get(path.basename(file));
          if (id === undefined) throw new InputError(`no image named ${JSON.stringify(path.basename(file))} in ${annotations}, so it has no COCO image id`, { file });
          if (id === null) throw new InputError(`${annotations} lists ${JSON.stringify(path.basename(file))} twice with different ids`, { file });
        }
      } else context.stderr('caption: no --annotations: image_id is each image\'s 1-based position in input order\n');
    }

    const captionerOptions = {
      ...cliCaptionerOptions('caption', context, decoding),
      attention: Boolean(values.report),
      masksDir: flags.masksDir,
      maskSize,
      cacheDir: flags.cacheDir,
      maxPixels: flags.maxPixels,
      signal: context.signal,
      onProgress: loadProgressLines('caption', context),
    };
    const sam: SamProvider | null = await samProviderFromFlags(values, context.cwd, context.backend?.threads);
    let captioner: Omit<Captioner, 'checkpoint'>;
    try {
      const withSam = sam ? { ...captionerOptions, maskProvider: sam } : captionerOptions;
      captioner =
        runtime.runtime === 'onnx'
          ? await runtime.pkg.loadOnnxCaptioner(values.checkpoint, { ...withSam, threads: context.backend?.threads, provider: runtime.provider })
          : await loadCaptioner(values.checkpoint, withSam);
    } catch (error) {
      await sam?.dispose();
      throw error;
    }
    const rows: (CaptionRow | CaptionFailureRow)[] = [];
    const reportItems: CaptionReportItem[] = [];
    const failures: CaptionFailureRow[] = [];
    const out = values.out ? path.resolve(context.cwd, values.out) : null;
    const stream = format === 'jsonl' ? (out ? await fsp.open(out, 'w') : null) : null;
    const emitLine = async (row: CaptionRow | CaptionFailureRow) => {
      const line = `${JSON.stringify(row)}\n`;
      if (stream) await stream.write(line);
      else context.stdout(line);
    };
    const bar = new ProgressBar(context, 'caption');
    const started = Date.now();
    let done = 0;
    const tick = () => {
      done++;
      const seconds = (Date.now() - started) / 1000;
      const rate = done / Math.max(seconds, 1e-3);
      bar.update(done, files.length, `${rate.toFixed(2)} img/s, ETA ${formatDuration((files.length - done) / rate)}`);
    };
    try {
      await captioner.captionFiles(files, {
        onError,
        signal: context.signal,
        onItem: async ({ result, image, maskView }) => {
          const row: CaptionRow = {
            file: shown(result.file!),
            caption: result.caption,
            categories: result.categories.map((c) => ({ name: c.name, probability: Math.round(c.probability * 1000) / 1000 })),
          };
          rows.push(row);
          if (format === 'jsonl') await emitLine(row);
          else if (format === 'text') {
            bar.end();
            context.stdout(`${row.file}\t${row.caption}\t[${row.categories.map((c) => c.name).join(', ')}]\n`);
          }
          if (values.report) {
            reportItems.push({ file: row.file, image: image as RgbImage, maskView, caption: row.caption, categories: row.categories, attention: result.attention ?? [], grid: result.grid });
          }
          tick();
        },
        onFailure: async (failure: CaptionerFailure) => {
          const row: CaptionFailureRow = { file: shown(failure.file), error: failure.error };
          rows.push(row);
          failures.push(row);
          if (format === 'jsonl') await emitLine(row);
          tick();
        },
      });
    } finally {
      bar.end();
      await stream?.close();
      captioner.dispose();
      await sam?.dispose();
    }
    const captioned = rows.filter((r): r is CaptionRow => !('error' in r));
    if (format === 'json' || format === 'csv' || format === 'coco') {
      const text =
        format === 'csv'
          ? formatCaptionsCsv(rows)
          : format === 'json'
            ? `${JSON.stringify(rows, null, 2)}\n`
            : `${JSON.stringify(
                rows.flatMap((r, i) => ('error' in r ? [] : [{ image_id: imageIds ? imageIds.get(path.basename(files[i]!))! : i + 1, caption: r.caption }])),
                null,
                2,
              )}\n`;
      if (out) await writeFileAtomic(out, text);
      else context.stdout(text);
    }
    if (out) context.stderr(`caption: wrote ${captioned.length} captions${failures.length ? ` and ${failures.length} failures` : ''} to ${out}\n`);
    if (values.report) {
      const reportFile = path.resolve(context.cwd, values.report);
      await writeCaptionReport(reportFile, {
        title: `s2cpnet caption: ${captioned.length} images`,
        settings: { checkpoint: values.checkpoint, backend: captioner.backend, beam: decoding.beamSize, 'max length': decoding.maxLength, 'mask size': captioner.maskSize ?? 'none' },
        items: reportItems,
        failures,
      });
      context.stderr(`caption: wrote the report to ${reportFile}\n`);
    }
    const seconds = (Date.now() - started) / 1000;
    context.stderr(`caption: captioned ${captioned.length} of ${files.length} images in ${formatDuration(seconds)}${failures.length ? `; ${failures.length} failed (skipped):` : ''}\n`);
    for (const f of failures) context.stderr(`caption:   ${f.file}: ${f.error}\n`);
    return ExitCode.ok;
  },
};

export { renderMaskView };
