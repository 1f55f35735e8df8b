import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { ConfigError, writeFileAtomic } from '@s2cpnet/core';
import { loadCaptioner, type Captioner } from '@s2cpnet/model';
import { captionScene, openScene, planTiles, sceneToCsv, sceneToGeoJSON, writeSceneReport } from '@s2cpnet/scene';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { formatDuration, ProgressBar } from '../progress';
import { cliCaptionerOptions, DECODING_FLAGS, decodingFlags, loadProgressLines } from './caption';
import { numberFlag } from './train';
import { chooseRuntime, RUNTIME_FLAGS } from './runtime-package';


/** The flags that say how a scene is read and cut, shared by `caption-scene` and `queue add --scene`. */
export const SCENE_FLAGS = {
  tile: { type: 'string' },
  overlap: { type: 'string' },
  gsd: { type: 'string' },
  bands: { type: 'string' },
  'source-crs': { type: 'string' },
  nodata: { type: 'string' },
  'max-nodata': { type: 'string' },
} as const;

/** Reads the `SCENE_FLAGS` values, with their defaults (tile 256, no overlap, the scene's own GSD, max nodata 0.5). */
export function sceneFlags(values: { tile?: string; overlap?: string; gsd?: string; bands?: string; 'source-crs'?: string; nodata?: string; 'max-nodata'?: string }) {
  const tile = numberFlag(values.tile, '--tile', { integer: true, min: 8 }) ?? 256;
  const overlap = numberFlag(values.overlap, '--overlap', { integer: true, min: 0 }) ?? 0;
  const gsd = numberFlag(values.gsd, '--gsd');
  if (gsd !== undefined && !(gsd > 0)) throw new ConfigError('--gsd', `expected a positive number of metres per pixel, found ${values.gsd}`);
  const nodata = values.nodata === undefined ? undefined : values.nodata.trim().toLowerCase() === 'nan' ? Number.NaN : numberFlag(values.nodata, '--nodata');
  const maxNodata = numberFlag(values['max-nodata'], '--max-nodata', { min: 0 }) ?? 0.5;
  if (maxNodata > 1) throw new ConfigError('--max-nodata', `expected a share from 0 to 1, found ${values['max-nodata']}`);
  let bands: number[] | undefined;
  if (values.bands !== undefined) {
    bands = values.bands.split(',').map((b) => {
      const n = Number(b.trim());
      if (!Number.isInteger(n) || n < 1) throw new ConfigError('--bands', `expected 1-based band numbers separated by commas (e.g. 4,3,2), found ${JSON.stringify(values.bands)}`);
      return n;
    });
  }
  return { tile, overlap, gsd, nodata, maxNodata, bands, sourceCrs: values['source-crs'] };
}

/** The options `caption-scene` accepts (every one is listed by its `--help`). */
export const CAPTION_SCENE_OPTIONS = {
  checkpoint: { type: 'string' },
  out: { type: 'string' },
  report: { type: 'string' },
  ...SCENE_FLAGS,
  limit: { type: 'string' },
  'mask-size': { type: 'string' },
  'cache-dir': { type: 'string' },
  ...DECODING_FLAGS,
  ...RUNTIME_FLAGS,
} as const;

const CAPTION_SCENE_USAGE = `s2cpnet caption-scene SCENE.tif --checkpoint DIR|PACKAGE|URL#sha256=HEX --out FILE.geojson|.csv [options]

Captions a GeoTIFF or Cloud-Optimized GeoTIFF scene tile by tile (tiled or striped; 8-bit, 16-bit or float; any
number of bands) and writes one polygon per tile in WGS84 (EPSG:4326, reprojected from the scene's CRS) with its
caption, categories and pixel window. The scene is read a batch of tiles at a time, never whole.

Options (default in brackets):
  --checkpoint REF        checkpoint folder, weights package name, or http(s) URL#sha256=HEX of a .tgz [required]
  --out FILE              .geojson or .json: a GeoJSON FeatureCollection; .csv: one line per tile with the polygon
                          as WKT [required]
  --report FILE.html      also write an HTML page: the scene shrunk, the tile grid, captions on hover and a
                          category heat layer [none]
  --tile N                tile side in pixels given to the model [256]
  --overlap PX            overlap of neighbouring tiles, in tile pixels [0]
  --gsd METRES            resample to this ground sample distance in metres/pixel first (UCM: about 0.3); needs a
                          georeferenced scene [the scene's own]
  --bands LIST            1-based bands to read: three for red,green,blue or one for grey, e.g. 4,3,2
                          [1,2,3, or 1 for a scene with fewer than three bands]
  --source-crs DEF        the scene's CRS when the file has none or one not built in: EPSG:N, a proj4 string or
                          WKT [the file's EPSG code]
  --nodata V              the value of pixels without data; nan for float scenes, --nodata=-9999 for a
                          negative one [the file's GDAL_NODATA tag, else none]
  --max-nodata F          skip tiles with more than this share of nodata pixels [0.5]
  --limit N               caption only the first N tiles, row by row [all]
  --beam K                beam width; 1 decodes greedily [3]
  --length-penalty A      GNMT length-penalty exponent [0]
  --max-length N          most words per caption [25]
  --batch-size N          tiles read and captioned together [8]
  --mask-size N           working size mask views are computed at [the checkpoint's training data's, else 224]
  --cache-dir DIR         cache folder for checkpoints given by URL [S2CPNET_CACHE_DIR, else ~/.cache/s2cpnet]
  --runtime R             tfjs | onnx | auto: onnx runs the checkpoint's ONNX export in ONNX Runtime (see
                          s2cpnet export --format onnx); auto picks it when installed and exported [tfjs]
  --ort-provider P        with the onnx runtime: cpu | cuda | webgpu [cpu]

Tiles run row by row from the top-left; the last column and row are moved back to end at the scene's edge. 8-bit
data is used as it is; 16-bit and float data are stretched linearly between the 2nd and 98th percentile of each
band. A scene without georeferencing is captioned too: its polygons are then in pixels ([column, -row]), and the
GeoJSON's "s2cpnet" member says "coordinates": "pixel". Progress (with ETA) goes to stderr; the output is written
only when every tile is done (Ctrl-C leaves no partial file).`;

export const captionSceneCommand: Command = {
  name: 'caption-scene',
  summary: 'Caption a GeoTIFF/COG scene tile by tile into WGS84 GeoJSON or CSV (and an HTML report)',
  usage: CAPTION_SCENE_USAGE,
  async run(argv: string[], context: CommandContext) {
    const { values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: CAPTION_SCENE_OPTIONS });
    if (positionals.length !== 1) throw new ConfigError('SCENE', `give exactly one GeoTIFF scene, found ${positionals.length}`);
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an installed weights package');
    if (!values.out) throw new ConfigError('--out', 'required: a .geojson, .json or .csv file name');
    const format = /\.(geojson|json)$/i.test(values.out) ? 'geojson' : /\.csv$/i.test(values.out) ? 'csv' : null;
    if (!format) throw new ConfigError('--out', `expected a .geojson, .json or .csv file name, found ${JSON.stringify(values.out)}`);
    if (values.report && !/\.html?$/i.test(values.report)) throw new ConfigError('--report', `expected an .html file name, found ${JSON.stringify(values.report)}`);
    const decoding = decodingFlags(values);
    const { tile, overlap, gsd, nodata, maxNodata, bands } = sceneFlags(values);
    const limit = numberFlag(values.limit, '--limit', { integer: true, min: 1 });
    const maskSize = numberFlag(values['mask-size'], '--mask-size', { integer: true, min: 16 });
    const sceneFile = path.resolve(context.cwd, positionals[0]!);
    const out = path.resolve(context.cwd, values.out);

    // The scene and the tile plan are checked before the model is loaded.
    const scene = await openScene(sceneFile, { bands, sourceCrs: values['source-crs'], nodata, signal: context.signal });
    try {
      const plan = planTiles(scene, { tile, overlap, gsd });
      const total = limit === undefined ? plan.tiles.length : Math.min(limit, plan.tiles.length);
      const shown = path.relative(context.cwd, sceneFile) || sceneFile;
      context.stderr(
        `caption-scene: ${shown}: ${scene.width}x${scene.height} px, ${scene.layout}, bands ${scene.bands.join(',')} of ${scene.samplesPerPixel}, ${scene.bitsPerSample}-bit ${scene.sampleFormat}` +
          `${scene.stretch ? ' (stretched 2-98 %)' : ''}, ${scene.crs ? scene.crs.name : 'no georeferencing'}` +
          `${scene.gsd ? `, ${scene.gsd.x.toFixed(3)} m/px` : ''}; ${total} tiles of ${tile} px (${plan.columns} x ${plan.rows}${plan.gsd ? `, ${plan.span.x} source px each at ${plan.gsd} m/px` : ''})\n`,
      );
      if (!scene.crs) context.stderr(`caption-scene: warning: the scene has no georeferencing: positions in ${values.out} are pixels ([column, -row]), not longitude/latitude\n`);

      const runtime = await chooseRuntime(values, values.checkpoint, context.cwd);
      const captionerOptions = {
        ...cliCaptionerOptions('caption-scene', context, decoding, { noCacheFlag: false }),
        maskSize,
        cacheDir: values['cache-dir'],
        signal: context.signal,
        onProgress: loadProgressLines('caption-scene', context),
      };
      const captioner: Omit<Captioner, 'checkpoint'> =
        runtime.runtime === 'onnx'
          ? await runtime.pkg.loadOnnxCaptioner(values.checkpoint, { ...captionerOptions, threads: context.backend?.threads, provider: runtime.provider })
          : await loadCaptioner(values.checkpoint, captionerOptions);
      const bar = new ProgressBar(context, 'caption-scene');
      const started = Date.now();
      let result;
      try {
        result = await captionScene(captioner, scene, {
          tile,
          overlap,
          gsd,
          batchSize: decoding.batchSize,
          maxNodata,
          limit,
          previewSize: values.report ? 1024 : 0,
          signal: context.signal,
          onProgress: (done, all) => {
            const rate = done / Math.max((Date.now() - started) / 1000, 1e-3);
            bar.update(done, all, `${rate.toFixed(2)} tiles/s, ETA ${formatDuration((all - done) / rate)}`);
          },
        });
      } finally {
        bar.end();
        captioner.dispose();
      }
      await writeFileAtomic(out, format === 'csv' ? sceneToCsv(result) : `${JSON.stringify(sceneToGeoJSON(result), null, 1)}\n`);
      context.stderr(`caption-scene: wrote ${result.tiles.length} captioned tiles${result.skipped.length ? ` and ${result.skipped.length} skipped (nodata)` : ''} to ${out}\n`);
      if (values.report) {
        const reportFile = path.resolve(context.cwd, values.report);
        await writeSceneReport(reportFile, result, {
          title: `s2cpnet caption-scene: ${path.basename(sceneFile)}`,
          settings: { checkpoint: values.checkpoint, backend: captioner.backend, beam: decoding.beamSize, 'max length': decoding.maxLength },
        });
        context.stderr(`caption-scene: wrote the report to ${reportFile}\n`);
      }
      const seconds = (Date.now() - started) / 1000;
      context.stderr(`caption-scene: captioned ${result.tiles.length} of ${total} tiles in ${formatDuration(seconds)} (${(total / Math.max(seconds, 1e-3)).toFixed(2)} tiles/s)\n`);
      return ExitCode.ok;
    } finally {
      await scene.close();
    }
  },
};
