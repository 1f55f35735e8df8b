import { chmodSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../command';
import { ExitCode } from '../command';
import { parseScoreArgs, scoreCommand } from './score';
import { sharedPath } from '../../../../scripts/shared-dir';

const directory = mkdtempSync(join(tmpdir(), 's2cpnet-score-cli-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = join(directory, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const context: CommandContext = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    isTTY: false,
    cwd: directory,
    signal: new AbortController().signal,
  };
  const code = await scoreCommand.run(argv, context);
  return { code, stdout, stderr };
}

const GOLDEN = sharedPath('testdata/coco-caption-golden');

interface GoldenCase {
  image_id: string;
  candidate_raw: string;
  references_raw: string[];
  candidate: string;
  references: string[];
}

const SCORE_KEYS = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'ROUGE_L', 'CIDEr'] as const;

describe.skipIf(GOLDEN === undefined)('s2cpnet score on the golden set', () => {
  const inputs = GOLDEN === undefined ? undefined : (JSON.parse(readFileSync(join(GOLDEN, 'inputs.json'), 'utf8')) as { cases: GoldenCase[] });
  const golden =
    GOLDEN === undefined
      ? undefined
      : (JSON.parse(readFileSync(join(GOLDEN, 'scores_all.json'), 'utf8')) as {
          corpus: Record<string, number>;
          per_image: (Record<string, number> & { image_id: string; meteor_stats_no_paraphrase: string })[];
        });

  function files(raw: boolean): { results: string; annotations: string } {
    const cases = inputs!.cases;
    const tag = raw ? 'raw' : 'tok';
    return {
      results: write(
        `results-${tag}.json`,
        cases.map((entry) => ({ image_id: entry.image_id, caption: raw ? entry.candidate_raw : entry.candidate })),
      ),
      annotations: write(`refs-${tag}.json`, {
        annotations: cases.flatMap((entry) =>
          (raw ? entry.references_raw : entry.references).map((caption) => ({ image_id: entry.image_id, caption })),
        ),
      }),
    };
  }

  function checkAgainstGolden(output: unknown): void {
    const document = output as { corpus: Record<string, number>; per_image: (Record<string, number> & { image_id: string; meteor_stats?: string })[] };
    for (const key of SCORE_KEYS) expect(Math.abs(document.corpus[key]! - golden!.corpus[key]!)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(document.corpus.METEOR! - golden!.corpus.METEOR_no_paraphrase!)).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(document.corpus.Sm! - golden!.corpus.Sm_with_METEOR_no_paraphrase!)).toBeLessThanOrEqual(1e-6);
    const byId = new Map(document.per_image.map((image) => [image.image_id, image]));
    expect(byId.size).toBe(golden!.per_image.length);
    for (const expected of golden!.per_image) {
      const actual = byId.get(expected.image_id)!;
      for (const key of SCORE_KEYS) expect(Math.abs(actual[key]! - expected[key]!), `${expected.image_id} ${key}`).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(actual.METEOR! - expected.METEOR_no_paraphrase!)).toBeLessThanOrEqual(1e-6);
    }
  }

  it('raw captions with --json match the toolkit', async () => {
    const { results, annotations } = files(true);
    const result = await run(['--results', results, '--annotations', annotations, '--json']);
    expect(result.stderr).toMatch(/163 images/);
    expect(result.code).toBe(ExitCode.ok);
    checkAgainstGolden(JSON.parse(result.stdout));
  });

  it('pre-tokenized captions with --pretokenized match the toolkit, and --meteor-stats adds the stats lines', async () => {
    const { results, annotations } = files(false);
    const result = await run(['--results', results, '--annotations', annotations, '--pretokenized', '--json', '--meteor-stats']);
    expect(result.code).toBe(ExitCode.ok);
    const output = JSON.parse(result.stdout) as { per_image: { image_id: string; meteor_stats: string }[] };
    checkAgainstGolden(output);
    const stats = new Map(output.per_image.map((image) => [image.image_id, image.meteor_stats]));
    for (const expected of golden!.per_image) expect(stats.get(expected.image_id)).toBe(expected.meteor_stats_no_paraphrase);
  });
});

describe('s2cpnet score', () => {
  const annotations = write('refs.json', {
    annotations: [
      { image_id: 1, caption: 'A long bridge over the river.' },
      { image_id: 1, caption: 'a bridge crosses the water' },
      { image_id: 2, caption: 'Several ships are docked in the port.' },
    ],
  });
  const results = write('preds.json', [
    { image_id: 1, caption: 'a bridge over a river' },
    { image_id: 2, caption: '' },
  ]);

  it('prints a readable table without --json', async () => {
    const result = await run(['--results', 'preds.json', '--annotations', 'refs.json']);
    expect(result.code).toBe(ExitCode.ok);
    expect(result.stdout).toMatch(/Scored 2 images \(PTB-tokenized; METEOR in TypeScript, no paraphrase table\)/);
    for (const key of ['Bleu_1', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'Sm']) expect(result.stdout).toMatch(new RegExp(`\\n  ${key} +\\d\\.\\d{6}`));
  });

  it('--metrics picks metric families; an empty candidate is valid and scores 0', async () => {
    const result = await run(['--results', results, '--annotations', annotations, '--json', '--metrics', 'cider,BLEU']);
    expect(result.code).toBe(ExitCode.ok);
    const output = JSON.parse(result.stdout) as { corpus: Record<string, number>; per_image: Record<string, unknown>[] };
    expect(Object.keys(output.corpus)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr']);
    expect(output.per_image[1]).toEqual({ image_id: 2, Bleu_1: 0, Bleu_2: 0, Bleu_3: 0, Bleu_4: 0, CIDEr: 0 });
  });

  it('reads a Karpathy dataset.json with --split', async () => {
    const karpathy = write('dataset.json', {
      images: [
        { imgid: 0, split: 'test', sentences: [{ raw: 'A lake with an island.', tokens: ['a', 'lake', 'with', 'an', 'island'] }] },
        { imgid: 1, split: 'train', sentences: [{ raw: 'A road.', tokens: ['a', 'road'] }] },
      ],
    });
    const predictions = write('kpreds.json', [{ image_id: 0, caption: 'a lake with an island' }]);
    const result = await run(['--results', predictions, '--annotations', karpathy, '--split', 'test', '--json']);
    expect(result.code).toBe(ExitCode.ok);
    expect((JSON.parse(result.stdout) as { corpus: { Bleu_4: number } }).corpus.Bleu_4).toBeCloseTo(1, 6);
    const missingSplit = await run(['--results', predictions, '--annotations', karpathy]);
    expect(missingSplit.code).toBe(ExitCode.badInput);
    expect(missingSplit.stderr).toMatch(/dataset\.json: .*--split \(test, train\)/);
  });

  it.each([
    ['an id missing from the references', [{ image_id: 1, caption: 'a' }, { image_id: 2, caption: 'b' }, { image_id: 3, caption: 'c' }], /bad\.json: image_id 3: has no references in/],
    ['an id missing from the results', [{ image_id: 1, caption: 'a' }], /refs\.json: image_id 2: has references but no caption in/],
    ['a duplicate id', [{ image_id: 1, caption: 'a' }, { image_id: 1, caption: 'b' }], /bad\.json: image_id 1: the image has two captions/],
    ['a non-string caption', [{ image_id: 1, caption: ['a'] }, { image_id: 2, caption: 'b' }], /bad\.json: \$\[0\]\.caption: image_id 1: caption must be a string, found an array/],
    ['malformed JSON', '[{"image_id": 1, "caption": "a"},', /bad\.json: malformed JSON/],
  ])('rejects %s with exit code 3, the file and id named, and nothing on stdout', async (_name, content, message) => {
    write('bad.json', content);
    const result = await run(['--results', 'bad.json', '--annotations', annotations, '--json']);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('rejects an empty reference caption', async () => {
    const emptyReference = write('refs-empty.json', { annotations: [{ image_id: 1, caption: '' }] });
    const result = await run(['--results', write('one.json', [{ image_id: 1, caption: 'a' }]), '--annotations', emptyReference]);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.stderr).toMatch(/refs-empty\.json: \$\.annotations\[0\]\.caption: image_id 1: reference caption is empty/);
  });

  it('reports usage errors with exit code 2', async () => {
    expect((await run(['--results', results])).code).toBe(ExitCode.usage);
    const badMetric = await run(['--results', results, '--annotations', annotations, '--metrics', 'spice']);
    expect(badMetric.code).toBe(ExitCode.usage);
    expect(badMetric.stderr).toMatch(/unknown metric "spice"/);
    expect((await run(['--results', results, '--annotations', annotations, '--metrics', 'constructor'])).code).toBe(ExitCode.usage);
    expect((await run(['--bogus'])).code).toBe(ExitCode.usage);
    const help = await run(['--help']);
    expect(help.code).toBe(ExitCode.ok);
    expect(help.stdout).toMatch(/--meteor-jar FILE/);
  });

  it('runs METEOR through a jar with --meteor-jar and --java (a stand-in java script here)', async () => {
    const jar = write('meteor-1.5.jar', 'fake');
    const java = join(directory, 'fake-java');
    writeFileSync(
      java,
      `#!${process.execPath}
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  console.log('5.0 6.0 2.0 2.0 3.0 3.0 2.0 2.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 5.0 5.0');
});
`,
    );
    chmodSync(java, 0o755);
    const result = await run(['--results', results, '--annotations', annotations, '--json', '--meteor-jar', jar, '--java', java, '--metrics', 'meteor']);
    expect(result.code).toBe(ExitCode.ok);
    const output = JSON.parse(result.stdout) as { corpus: { METEOR: number }; per_image: { METEOR: number }[] };
    // The stand-in answers the same statistics for every image, so the summed statistics score the same.
    expect(output.per_image[0]!.METEOR).toBe(output.per_image[1]!.METEOR);
    expect(output.corpus.METEOR).toBeCloseTo(output.per_image[0]!.METEOR, 12);
    expect(output.corpus.METEOR).toBeGreaterThan(0.4);
    const missingJar = await run(['--results', results, '--annotations', annotations, '--meteor-jar', 'missing.jar']);
    expect(missingJar.code).toBe(ExitCode.badInput);
    expect(missingJar.stderr).toMatch(/missing\.jar: the Meteor jar does not exist/);
  });

  it('refuses a file over --max-bytes with exit code 3, naming the file, its size and the limit', async () => {
    const size = readFileSync(results).length;
    const result = await run(['--results', results, '--annotations', annotations, '--json', '--max-bytes', String(size - 1)]);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.stderr).toContain(`${results}: the file is ${size} bytes`);
    expect(result.stderr).toMatch(new RegExp(`more than the limit of ${size - 1} bytes .*--max-bytes`));
    expect(result.stdout).toBe('');
    // At the limit the file is read; the annotations file is checked too; suffixes give KiB/MiB/GiB.
    expect((await run(['--results', results, '--annotations', annotations, '--max-bytes', String(size), '--metrics', 'bleu'])).code).toBe(
      ExitCode.badInput,
    );
    const both = await run(['--results', results, '--annotations', annotations, '--max-bytes', '1k', '--metrics', 'bleu']);
    expect(both.code).toBe(ExitCode.ok);
    expect(parseScoreArgs(['--results', 'p', '--annotations', 'r', '--max-bytes', '200M'], '/').maxBytes).toBe(200 * 2 ** 20);
    for (const bad of ['0', '-5', '1.5', 'lots', '12Q']) {
      const usage = await run(['--results', results, '--annotations', annotations, '--max-bytes', bad]);
      expect(usage.code, bad).toBe(ExitCode.usage);
      expect(usage.stderr).toMatch(/--max-bytes/);
    }
  });

  it('refuses a file over the default limit of 64 MiB before reading it', async () => {
    // A sparse file: its size is over the limit without taking disk space; reading it would find only NUL bytes.
    const huge = join(directory, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, 64 * 2 ** 20 + 1);
    const result = await run(['--results', huge, '--annotations', annotations]);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.stderr).toContain(`${huge}: the file is 67108865 bytes (64.0 MiB), more than the limit of 67108864 bytes (64.0 MiB)`);
    rmSync(huge);
  });

  it('refuses a caption of more than 1000 words by default, naming the image; --max-caption-words raises the limit', async () => {
    const longCaption = Array.from({ length: 20_000 }, (_, i) => ['a', 'long', 'bridge', 'over', 'the', 'river', 'water'][i % 7]).join(' ');
    const longResults = write('long.json', [
      { image_id: 1, caption: longCaption },
      { image_id: 2, caption: 'ships in a port' },
    ]);
    const refused = await run(['--results', longResults, '--annotations', annotations, '--json']);
    expect(refused.code).toBe(ExitCode.badInput);
    expect(refused.stderr).toMatch(/image_id 1: the candidate caption has 20000 words, more than the limit of 1000 .*--max-caption-words/);
    expect(refused.stdout).toBe('');
    const scored = await run(['--results', longResults, '--annotations', annotations, '--json', '--max-caption-words', '20000']);
    expect(scored.code).toBe(ExitCode.ok);
    const output = JSON.parse(scored.stdout) as { per_image: { METEOR: number; Sm: number }[] };
    expect(output.per_image[0]!.METEOR).toBeGreaterThan(0);
    expect(output.per_image[0]!.METEOR).toBeLessThanOrEqual(1);
    expect(Number.isFinite(output.per_image[0]!.Sm)).toBe(true);
    expect((await run(['--results', longResults, '--annotations', annotations, '--max-caption-words', 'many'])).code).toBe(ExitCode.usage);
  });

  it('resolves paths against the working directory and checks flag combinations', () => {
    const parsed = parseScoreArgs(['--results', 'p.json', '--annotations', 'r.json', '--metrics', 'rouge', '--metrics', 'bleu'], '/data');
    expect(parsed.results).toBe('/data/p.json');
    expect(parsed.metrics).toEqual(['Bleu', 'ROUGE_L']);
    expect(() => parseScoreArgs(['--results', 'p', '--annotations', 'r', '--java', 'java'], '/')).toThrow(/--java only applies/);
    expect(() =>
      parseScoreArgs(['--results', 'p', '--annotations', 'r', '--meteor-jar', 'm.jar', '--paraphrase-table', 't.gz'], '/'),
    ).toThrow(/exclude each other/);
  });
});
