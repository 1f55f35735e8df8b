/** What a job holds. One BullMQ job is one batch of work. */
import { createHash } from 'node:crypto';
import type { SceneJobSettings, SceneJobTile } from './scene-jobs';

/** A batch of image files (absolute paths, the same on every worker machine). */
export interface ImagesJobData {
  kind: 'images';
  files: string[];
}

/** A batch of tiles of one scene (absolute path, the same on every worker machine). */
export interface SceneJobData {
  kind: 'scene';
  /** Absolute path of the scene file. */
  scene: string;
  /** The tiles of this batch: item key, plan index and the pixel window to read. */
  tiles: SceneJobTile[];
  /** How the scene is read and cut (tile, overlap, gsd, bands, CRS, nodata), with defaults filled in. */
  settings: SceneJobSettings;
}

export type CaptionJobData = ImagesJobData | SceneJobData;

/** What a finished images job returns (kept by BullMQ with the completed job). */
export interface BatchResult {
  /** Images captioned by this run of the job. */
  captioned: number;
  /** Images whose result was already stored (same bytes, same checkpoint and settings): not captioned again. */
  cached: number;
  /** Images that could not be captioned (recorded with their error). */
  failed: number;
}

/** BullMQ job name of image batches. */
export const IMAGES_JOB = 'images';
/** BullMQ job name of scene tile batches. */
export const SCENE_JOB = 'scene';

/**
 * The job id of a batch: `images-` and the first 32 hex digits of the sha256 of its paths, one per line. The same
 * batch enqueued again has the same id, and BullMQ ignores an add with an id it holds.
 */
export function batchJobId(files: readonly string[]): string {
  return `images-${createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 32)}`;
}

/** Attempts of a job that throws (not an unreadable image: those are recorded, not retried), with exponential backoff. */
export const JOB_ATTEMPTS = 3;
export const JOB_BACKOFF_MS = 2000;
