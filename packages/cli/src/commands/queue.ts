import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { ConfigError, writeFileAtomic } from '@s2cpnet/core';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { formatDuration } from '../progress';
import { formatCaptionsCsv } from './caption';
import { SCENE_FLAGS, sceneFlags } from './caption-scene';
import { numberFlag } from './train';
import { loadQueuePackage, REDIS_FLAG_HELP } from './queue-package';

/** The options of `queue add`, `queue status` and `queue export` (for the help test). */
export const QUEUE_OPTIONS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  images: { type: 'string' },
  recursive: { type: 'boolean', default: false },
  list: { type: 'string' },
  scene: { type: 'string' },
  ...SCENE_FLAGS,
  batch: { type: 'string' },
  json: { type: 'boolean', default: false },
  failures: { type: 'string' },
  out: { type: 'string' },
  'allow-missing': { type: 'boolean', default: false },
  'relative-to': { type: 'string' },
} as const;

const SUBCOMMAND_OPTIONS: Record<string, readonly (keyof typeof QUEUE_OPTIONS)[]> = {
  add: ['redis', 'queue', 'images', 'recursive', 'list', 'scene', 'tile', 'overlap', 'gsd', 'bands', 'source-crs', 'nodata', 'max-nodata', 'batch', 'json'],
  status: ['redis', 'queue', 'json', 'failures'],
  export: ['redis', 'queue', 'out', 'allow-missing', 'relative-to'],
};

const QUEUE_USAGE = `s2cpnet queue add|status|export --queue NAME [--redis URL] [options]

Caption an archive across machines: 'queue add' puts batches of images on a queue in Redis, any number of
's2cpnet worker' processes (on any machines that see the same files at the same paths) caption them, 'queue
status' shows the progress, 'queue export' writes the results. Needs a stock redis-server (no module); see the
@s2cpnet/queue README for the guarantees.

  s2cpnet queue add --queue NAME (--images DIR | --list FILE | --scene FILE) [--batch 64]
  s2cpnet queue status --queue NAME [--json]
  s2cpnet queue export --queue NAME --out results.json|.jsonl|.csv|.geojson [--allow-missing]

Options (default in brackets):
  ${REDIS_FLAG_HELP}
  --queue NAME            queue name: letters, digits, '.', '_', '-' [required]
 add:
  --images DIR            enqueue the .tif/.tiff/.jpg/.jpeg/.png images of a folder, sorted by name [default: none]
  --recursive             with --images: also those of its subfolders [off]
  --list FILE             enqueue the files a list names, one path per line (relative paths: to the list's
                          folder; # starts a comment) [default: none]
  --scene FILE            enqueue the tiles of a GeoTIFF/COG scene, cut as 'caption-scene' cuts them; each tile is
                          an item named FILE#x0,y0,x1,y1 [default: none]
  --tile N                with --scene: tile side in pixels given to the model [default: 256]
  --overlap PX            with --scene: overlap of neighbouring tiles, in tile pixels [default: 0]
  --gsd METRES            with --scene: resample to this ground sample distance first [default: the scene's]
  --bands LIST            with --scene: 1-based bands, three (red,green,blue) or one [default: 1,2,3 or 1]
  --source-crs DEF        with --scene: its CRS when the file has none or one not built in [default: the file's]
  --nodata V              with --scene: the value of pixels without data [default: the file's GDAL_NODATA]
  --max-nodata F          with --scene: skip tiles with more than this share of nodata pixels [default: 0.5]
  --batch N               images (or scene tiles) per job [default: 64]
                          Adding the same images with the same --batch again adds nothing (batches that failed are
                          retried); paths are stored absolute, so every worker must see them at the same paths.
  --json                  print the summary as JSON on stdout [off]
 status:
  --failures N            failed images (with their errors) to list [default: 20]
  --json                  print the status as JSON on stdout [off]
 export:
  --out FILE              .json (the records of 'caption --out x.json', one per enqueued image, in enqueue order),
                          .jsonl (one record a line), .csv, or for scene tiles .geojson (what 'caption-scene'
                          writes: one WGS84 polygon per tile) [required]
  --allow-missing         write the images captioned so far and say how many are missing [off: images not yet
                          captioned are an error (exit 3) giving their count]
  --relative-to DIR       write file names relative to DIR (as 'caption' writes them relative to its working
                          folder) [default: absolute paths, as enqueued]

Exit status: 0 done, 2 usage or no Redis server at --redis, 3 bad input (a missing file, images not captioned yet).`;

/** Each subcommand takes only its own options. */
function checkSubcommandFlags(sub: string, given: string[]): void {
  const allowed = new Set<string>(SUBCOMMAND_OPTIONS[sub]);
  for (const arg of given) {
    if (!arg.startsWith('--')) continue;
    const flag = arg.slice(2).split('=')[0]!;
    if (!allowed.has(flag)) throw new ConfigError(`--${flag}`, `not an option of 'queue ${sub}' (its options: ${[...allowed].map((f) => `--${f}`).join(', ')})`);
  }
}

export const queueCommand: Command = {
  name: 'queue',
  summary: 'Caption an archive across machines: add images to a Redis queue, show its status, export the results',
  usage: QUEUE_USAGE,
  async run(argv: string[], context: CommandContext) {
    const [sub, ...rest] = argv;
    if (!sub || !(sub in SUBCOMMAND_OPTIONS)) throw new ConfigError('queue', `expected a subcommand: add, status or export, found ${sub === undefined ? 'none' : JSON.stringify(sub)}`);
    const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: QUEUE_OPTIONS });
    checkSubcommandFlags(sub, rest);
    if (positionals.length > 0) throw new ConfigError(positionals[0]!, `unexpected argument to 'queue ${sub}'${sub === 'add' ? ' (give a folder with --images or a list file with --list)' : ''}`);
    if (!values.queue) throw new ConfigError('--queue', 'required: the name of the queue');
    const queueLib = await loadQueuePackage();
    const target = {
      redis: values.redis ?? queueLib.defaultRedisUrl(),
      queue: values.queue,
      names: { redis: '--redis', queue: '--queue' },
    };

    if (sub === 'add') {
      const given = [values.images, values.list, values.scene].filter((v) => v !== undefined).length;
      if (given !== 1) throw new ConfigError('--images/--list/--scene', `give exactly one of --images DIR, --list FILE or --scene FILE, found ${given}`);
      if (values.recursive && !values.images) throw new ConfigError('--recursive', 'only used with --images');
      const sceneOnly = (['tile', 'overlap', 'gsd', 'bands', 'source-crs', 'nodata', 'max-nodata'] as const).find((f) => values[f] !== undefined);
      if (sceneOnly && values.scene === undefined) throw new ConfigError(`--${sceneOnly}`, 'only used with --scene');
      let sceneSettings;
      if (values.scene !== undefined) {
        const flags = sceneFlags(values);
        sceneSettings = { tile: flags.tile, overlap: flags.overlap, gsd: flags.gsd, bands: flags.bands, sourceCrs: flags.sourceCrs, nodata: flags.nodata, maxNodata: flags.maxNodata };
      }
      const batch = numberFlag(values.batch, '--batch', { integer: true, min: 1 }) ?? 64;
      const summary = await queueLib.enqueue({
        ...target,
        images: values.images,
        recursive: values.recursive,
        list: values.list,
        scene: values.scene,
        sceneSettings,
        batch,
        cwd: context.cwd,
        signal: context.signal,
      });
      if (values.json) context.stdout(`${JSON.stringify(summary, null, 2)}\n`);
      context.stderr(
        `queue add: ${summary.images} images in ${summary.batches} batches of up to ${batch} on queue ${summary.queue}: ${summary.added} added` +
          `${summary.existing ? `, ${summary.existing} already there (left as they are)` : ''}${summary.retried ? `, ${summary.retried} failed before (retried)` : ''}; ` +
          `${summary.newImages} images new to the queue\n`,
      );
      return ExitCode.ok;
    }

    if (sub === 'status') {
      const failureLimit = numberFlag(values.failures, '--failures', { integer: true, min: 0 }) ?? 20;
      const status = await queueLib.queueStatus({ ...target, failureLimit });
      if (values.json) {
        context.stdout(`${JSON.stringify(status, null, 2)}\n`);
        return ExitCode.ok;
      }
      const { jobs, images, rate } = status;
      const lines = [
        `queue ${status.queue} on ${status.redis}`,
        `  checkpoint  ${status.binding ? `${status.binding.checkpoint} (id ${status.binding.checkpointId.slice(0, 12)}, beam ${status.binding.settings.beam}, max length ${status.binding.settings.maxLength}, mask size ${status.binding.settings.maskSize ?? 'none'})` : 'none yet (no worker has started)'}`,
        `  images      ${images.done} of ${images.total} captioned, ${images.failed} failed, ${images.remaining} to go`,
        `  batches     ${jobs.waiting} waiting, ${jobs.active} running, ${jobs.delayed} delayed (retry backoff), ${jobs.completed} completed, ${jobs.failed} failed`,
        `  rate        ${rate.lastMinute.toFixed(2)} img/s over the last minute, ${rate.overall.toFixed(2)} img/s overall${rate.etaSeconds !== null ? `, ETA ${formatDuration(rate.etaSeconds)}` : ''}`,
      ];
      if (status.failures.length > 0) {
        lines.push(`  failed images${images.failed > status.failures.length ? ` (first ${status.failures.length} of ${images.failed})` : ''}:`);
        for (const f of status.failures) lines.push(`    ${f.file}: ${f.error}`);
      }
      if (status.failedBatches.length > 0) {
        lines.push('  failed batches (run the same queue add again to retry them):');
        for (const b of status.failedBatches) lines.push(`    ${b.id} (${b.files} images, ${b.attempts} attempts): ${b.reason}`);
      }
      context.stdout(`${lines.join('\n')}\n`);
      return ExitCode.ok;
    }

    // export
    if (!values.out) throw new ConfigError('--out', 'required: a .json, .jsonl, .csv or .geojson file');
    const format = /\.(json|jsonl|csv|geojson)$/i.exec(values.out)?.[1]?.toLowerCase();
    if (!format) throw new ConfigError('--out', `expected a .json, .jsonl, .csv or .geojson file name, found ${JSON.stringify(values.out)}`);
    const out = path.resolve(context.cwd, values.out);
    if (format === 'geojson') {
      if (values['relative-to'] !== undefined) throw new ConfigError('--relative-to', 'not used with .geojson (tiles are placed by their polygons)');
      const { geojson, missing } = await queueLib.exportGeoJSON({ ...target, allowMissing: values['allow-missing'] });
      await writeFileAtomic(out, `${JSON.stringify(geojson)}\n`);
      const skipped = geojson.features.filter((f) => f.properties.status === 'skipped').length;
      context.stderr(
        `queue export: wrote ${geojson.features.length - skipped} captioned tiles${skipped ? ` and ${skipped} skipped (nodata)` : ''} to ${out}` +
          `${missing.length ? `; ${missing.length} tiles not captioned yet were left out (--allow-missing)` : ''}\n`,
      );
      return ExitCode.ok;
    }
    const { records, missing } = await queueLib.exportResults({
      ...target,
      allowMissing: values['allow-missing'],
      relativeTo: values['relative-to'] === undefined ? undefined : path.resolve(context.cwd, values['relative-to']),
    });
    const text = format === 'csv' ? formatCaptionsCsv(records) : format === 'jsonl' ? records.map((r) => `${JSON.stringify(r)}\n`).join('') : `${JSON.stringify(records, null, 2)}\n`;
    await writeFileAtomic(out, text);
    const failed = records.filter((r) => 'error' in r).length;
    context.stderr(
      `queue export: wrote ${records.length - failed} captions${failed ? ` and ${failed} failures` : ''} to ${out}` +
        `${missing.length ? `; ${missing.length} images not captioned yet were left out (--allow-missing)` : ''}\n`,
    );
    return ExitCode.ok;
  },
};
