/**
 * A bridge to a user-supplied `meteor-1.5.jar`, for paper-grade METEOR with Meteor's own paraphrase table.
 *
 * It runs the jar the way the COCO toolkit does (`java -Xmx2G -jar meteor-1.5.jar - - -stdio -l en -norm`) and
 * sends one `SCORE ||| refs ||| candidate` line per image. Only the statistics lines are taken from the jar: the
 * scores are computed from them with Meteor's formula (`meteorScoreFromStats`), which gives the same numbers as
 * the jar's `EVAL` and works with both the stock jar and the toolkit's modified one (whose `EVAL` replies differ).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { MetricsInputError } from '../errors.js';
import type { CaptionItem } from '../types.js';
import type { CaptionLimits } from '../validate.js';
import { assertScoreableItems } from '../validate.js';
import type { MeteorResult } from './meteor.js';
import type { MeteorParameters } from './stats.js';
import { METEOR_ENGLISH_RANK_PARAMETERS, meteorScoreFromStats, parseMeteorStats, sumMeteorStats } from './stats.js';

export interface MeteorJarOptions extends CaptionLimits {
  /** Path of meteor-1.5.jar (its `data/paraphrase-en.gz` must sit beside it, as Meteor expects). */
  jarPath: string;
  /** The java executable. Default `java` from the PATH. */
  javaPath?: string;
  /** JVM options placed before `-jar`. Default `['-Xmx2G']`, as the toolkit uses. */
  jvmOptions?: readonly string[];
  /** Kill the jar and fail after this long. Default 10 minutes. */
  timeoutMs?: number;
  /** Parameters used to turn the jar's statistics into scores; default Meteor 1.5 English rank. */
  parameters?: MeteorParameters;
  /** Aborts the run (the jar is killed). */
  signal?: AbortSignal;
}

/** The protocol line the toolkit sends for one image. */
function scoreLine(item: CaptionItem): string {
  const candidate = item.candidate.replaceAll('|||', '').replaceAll('  ', ' ');
  return ['SCORE', ...item.references, candidate].join(' ||| ').replace(/[\r\n]/g, ' ');
}

/**
 * METEOR from the real Meteor jar: per-image statistics from the jar, scores and the corpus score (of the
 * summed statistics) computed from them.
 *
 * @example
 * const result = await computeMeteorWithJar(items, { jarPath: '/opt/meteor/meteor-1.5.jar' });
 */
export async function computeMeteorWithJar(items: readonly CaptionItem[], options: MeteorJarOptions): Promise<MeteorResult> {
  assertScoreableItems(items, options);
  const { jarPath } = options;
  if (!existsSync(jarPath)) {
    throw new MetricsInputError('the Meteor jar does not exist', { file: jarPath });
  }
  const javaPath = options.javaPath ?? 'java';
  const args = [...(options.jvmOptions ?? ['-Xmx2G']), '-jar', jarPath, '-', '-', '-stdio', '-l', 'en', '-norm'];
  const parameters = options.parameters ?? METEOR_ENGLISH_RANK_PARAMETERS;
  const timeoutMs = options.timeoutMs ?? 600_000;

  const statsLines = await new Promise<string[]>((resolve, reject) => {
    const child = spawn(javaPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let pending = '';
    let stderr = '';
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else {
        resolve(lines);
      }
    };
    const failure = (problem: string, cause?: unknown): MetricsInputError =>
      new MetricsInputError(
        `${problem}${stderr.trim() ? `; its stderr ends with: ${stderr.trim().slice(-500)}` : ''}`,
        { file: jarPath },
        { cause },
      );
    const onAbort = (): void => finish(failure('the Meteor run was aborted'));
    const timer = setTimeout(() => finish(failure(`the Meteor jar did not answer within ${timeoutMs} ms`)), timeoutMs);
    options.signal?.addEventListener('abort', onAbort);
    if (options.signal?.aborted) onAbort();

    child.on('error', (error) => finish(failure(`cannot run '${javaPath}' (${error.message})`, error)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline).replace(/\r$/, '');
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (lines.length === items.length) child.stdin.end();
      }
    });
    child.on('close', (code) => {
      if (lines.length < items.length) {
        finish(failure(`the Meteor jar exited (code ${code}) after answering ${lines.length} of ${items.length} images`));
      } else {
        finish(undefined);
      }
    });
    child.stdin.on('error', () => {
      // The jar closed its input early; the 'close' handler reports it with the answers received so far.
    });
    for (const item of items) child.stdin.write(`${scoreLine(item)}\n`);
  });

  const perImage = statsLines.map((line, index) => {
    let stats: number[];
    try {
      stats = parseMeteorStats(line);
    } catch (error) {
      throw new MetricsInputError(
        `the Meteor jar answered ${JSON.stringify(line.slice(0, 200))} instead of statistics`,
        { file: jarPath, imageId: items[index]!.imageId },
        { cause: error },
      );
    }
    // The jar does not say which reference it kept; -1 marks "unknown".
    return { score: meteorScoreFromStats(stats, parameters), stats, chosenReference: -1 };
  });
  const corpusStats = sumMeteorStats(perImage.map((image) => image.stats));
  return { corpus: meteorScoreFromStats(corpusStats, parameters), corpusStats, perImage };
}
