import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { ConfigError, writeJsonAtomic } from '@s2cpnet/core';
import { loadCaptionDataset, imagesOfSplit, realImagePath, type Split, SPLITS } from '@s2cpnet/data';
import { scoreCaptions } from '@s2cpnet/metrics';
import { loadCheckpoint, recordedMaskVersion, type CaptionerResult } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { ProgressBar } from '../progress';
import { captionFiles, checkImageFiles, CLI_CACHE_HINT, decodingFlags, DECODING_FLAGS, MASK_FLAGS, maskFlags, maskSizeFor, openCaptionMasks } from './caption';
import { chooseRuntime, RUNTIME_FLAGS, samProviderFromFlags } from './runtime-package';
import { numberFlag } from './train';

/** The flags `s2cpnet evaluate` accepts (its `--help` lists each one). */
export const EVALUATE_OPTIONS = {
  checkpoint: { type: 'string' },
  annotations: { type: 'string' },
  images: { type: 'string' },
  ...MASK_FLAGS,
  split: { type: 'string' },
  ...DECODING_FLAGS,
  out: { type: 'string' },
  json: { type: 'boolean', default: false },
  ...RUNTIME_FLAGS,
} as const;

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'Caption a split of a caption dataset with a checkpoint and score it (BLEU, METEOR, ROUGE_L, CIDEr-D, Sm)',
  usage: `s2cpnet evaluate --checkpoint DIR --annotations FILE --images DIR --split val|test|train [options]

Options:
  --checkpoint DIR|PACKAGE  (required) a checkpoint folder or weights package, e.g. @s2cpnet/weights-ucm-mobilenet
  --annotations FILE        (required) the caption file (Karpathy dataset.json, NWPU-Captions or COCO captions)
  --images DIR              (required) folder the caption file's image names are relative to
  --split NAME              (required) the split to caption and score: val, test or train
  --beam K                  beam width (default 3)
  --length-penalty A        length normalisation of beam scores, ((5 + length) / 6)^A (default 0: none)
  --max-length N            most words per caption (default 25)
  --batch-size N            images captioned at once (default 8)
  --masks DIR|sam           precomputed mask images named like the images, or sam: compute them with a SAM-class
                            model, as prepare --masks sam did (default: compute them as the checkpoint's training
                            data did)
  --sam-encoder FILE        with --masks sam: the SAM image encoder .onnx (required there)
  --sam-decoder FILE        with --masks sam: the SAM prompt encoder + mask decoder .onnx (required there)
  --sam-points N            with --masks sam: points per side of the prompt grid (default 16)
  --mask-size N             working size of computed masks (default: the one the checkpoint records, else 224)
  --cache-dir DIR           where computed masks are cached (default: S2CPNET_CACHE_DIR, else ~/.cache/s2cpnet)
  --no-cache                do not cache computed masks (default off)
  --max-pixels N            refuse images larger than N pixels, from their header (default 64M, or
                            S2CPNET_MAX_IMAGE_PIXELS)
  --out DIR                 also write predictions_SPLIT.json and scores_SPLIT.json there (default: none)
  --json                    print the corpus scores as JSON on stdout (default off: a table)
  --runtime R               tfjs | onnx | auto: onnx runs the checkpoint's ONNX export in ONNX Runtime (see
                            s2cpnet export --format onnx); auto picks onnx when @s2cpnet/runtime-onnx,
                            onnxruntime-node and an export are there (default tfjs)
  --ort-provider P          with the onnx runtime: cpu | cuda | webgpu (default cpu)`,
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({ args: argv, strict: true, options: EVALUATE_OPTIONS });
    for (const flag of ['checkpoint', 'annotations', 'images', 'split'] as const) {
      if (!values[flag]) throw new ConfigError(`--${flag}`, 'required');
    }
    const split = values.split as Split;
    if (!(SPLITS as readonly string[]).includes(split)) throw new ConfigError('--split', `expected one of ${SPLITS.join(', ')}, found ${JSON.stringify(values.split)}`);
    const decoding = decodingFlags(values);
    const flags = maskFlags(values);
    const { beamSize, lengthPenalty } = decoding;
    const imagesDir = path.resolve(context.cwd, values.images!);
    const dataset = await loadCaptionDataset(path.resolve(context.cwd, values.annotations!), { imagesDir });
    const images = imagesOfSplit(dataset, split);
    if (images.length === 0) throw new ConfigError('--split', `split "${split}" of ${values.annotations} has no images`);
    // Every image is checked before the model is loaded: inside the images folder (no symbolic link out of it),
    // readable, within the pixel cap.
    for (const image of images) await realImagePath(imagesDir, image.file);
    await checkImageFiles(images.map((image) => image.file), { maxPixels: flags.maxPixels });
    const runtime = await chooseRuntime(values, values.checkpoint!, context.cwd);
    const sam = await samProviderFromFlags(values, context.cwd, context.backend?.threads);
    const warn = (line: string) => context.stderr(`evaluate: warning: ${line}\n`);
    let results: CaptionerResult[];
    let source: string;
    const bar = new ProgressBar(context, 'evaluate');
    const onProgress = (done: number, total: number) => bar.update(done, total, '');
    try {
      if (runtime.runtime === 'onnx') {
        const explicitMaskSize = numberFlag(values['mask-size'], '--mask-size', { integer: true, min: 16 });
        const captioner = await runtime.pkg.loadOnnxCaptioner(values.checkpoint!, {
          beam: decoding.beamSize,
          maxLength: decoding.maxLength,
          lengthPenalty: decoding.lengthPenalty,
          batchSize: decoding.batchSize,
          masksDir: flags.masksDir,
          cacheDir: flags.cacheDir,
          cacheHint: CLI_CACHE_HINT,
          maskSize: explicitMaskSize,
          maxPixels: flags.maxPixels,
          maskProvider: sam ?? undefined,
          threads: context.backend?.threads,
          provider: runtime.provider,
          cwd: context.cwd,
          warn,
        });
        context.stderr(`evaluate: ${images.length} ${split} images, beam ${beamSize}${lengthPenalty ? `, length penalty ${lengthPenalty}` : ''}, runtime ${captioner.backend}\n`);
        try {
          results = (await captioner.captionFiles(images.map((i) => i.file), { signal: context.signal, onProgress })) as CaptionerResult[];
        } finally {
          captioner.dispose();
        }
        source = captioner.model.dir;
      } else {
        const info = await initBackend({ ...context.backend });
        const checkpoint = await loadCheckpoint(values.checkpoint!, { cwd: context.cwd });
        context.stderr(`evaluate: ${images.length} ${split} images, beam ${beamSize}${lengthPenalty ? `, length penalty ${lengthPenalty}` : ''}, backend ${info.backend}\n`);
        try {
          const masks = checkpoint.model.config.useMaskView
            ? await openCaptionMasks({ ...flags, provider: sam ?? undefined, maskSize: await maskSizeFor(checkpoint, values['mask-size']), version: recordedMaskVersion(checkpoint), cwd: context.cwd, warn })
            : null;
          results = await captionFiles(checkpoint, images.map((i) => i.file), { ...decoding, masks, maxPixels: flags.maxPixels, signal: context.signal, onProgress });
        } finally {
          checkpoint.model.dispose();
        }
        source = checkpoint.dir;
      }
    } finally {
      await sam?.dispose();
    }
    bar.end();
    const predictions = images.map((image, i) => ({ image_id: image.id, caption: results[i]!.caption }));
    const report = await scoreCaptions(images.map((image, i) => ({ imageId: image.id, candidate: results[i]!.caption, references: image.captions.map((c) => c.raw) })));
    if (values.out) {
      const out = path.resolve(context.cwd, values.out);
      await writeJsonAtomic(path.join(out, `predictions_${split}.json`), predictions);
      await writeJsonAtomic(path.join(out, `scores_${split}.json`), { corpus: report.corpus, per_image: report.perImage.map(({ imageId, ...s }) => ({ image_id: imageId, ...s })), beam: beamSize, lengthPenalty, checkpoint: source, runtime: runtime.runtime });
      context.stderr(`evaluate: wrote ${path.join(out, `predictions_${split}.json`)} and scores_${split}.json\n`);
    }
    if (values.json) context.stdout(`${JSON.stringify(report.corpus, null, 2)}\n`);
    else for (const [k, v] of Object.entries(report.corpus)) context.stdout(`${k.padEnd(8)} ${Number(v).toFixed(4)}\n`);
    return ExitCode.ok;
  },
};
