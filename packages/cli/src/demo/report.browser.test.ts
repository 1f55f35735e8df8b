/// <reference lib="dom" />
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runDemo } from '../commands/demo';
import { haveChromium, launchChromium } from '../../../../scripts/chromium';

/** Debian's Chromium; `.ci/run` installs it (apt-get install chromium). */

let out = '';

beforeAll(() => {
  out = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-demo-report-'));
});

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('demo report in headless Chromium', () => {
  it.runIf(haveChromium)(
    'a short demo writes report.html and scores.json; images, captions and charts render',
    async () => {
      const err: string[] = [];
      // a shortened demo (120 images, one epoch): this checks the report, not the scores
      const corpus = await runDemo(
        { stdout: () => {}, stderr: (t) => void err.push(t), isTTY: false, cwd: out, signal: new AbortController().signal },
        { out, seed: 3, images: 120, epochs: 1 },
      );
      expect(Object.keys(corpus)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'Sm']);
      const scores = JSON.parse(readFileSync(path.join(out, 'scores.json'), 'utf8'));
      expect(scores.corpus.CIDEr).toBe(corpus.CIDEr);

      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        await page.goto(`file://${path.join(out, 'report.html')}`);
        await page.waitForSelector('.gallery[data-ready="true"]');
        const state = await page.evaluate(() => {
          const images = Array.from(document.querySelectorAll('img')) as HTMLImageElement[];
          return {
            images: images.length,
            broken: images.filter((img) => !img.complete || img.naturalWidth === 0).length,
            items: document.querySelectorAll('section.item').length,
            count: document.querySelector('.count')?.textContent ?? '',
            generated: Array.from(document.querySelectorAll('.generated')).map((e) => e.textContent ?? ''),
            references: document.querySelectorAll('.references li').length,
            charts: document.querySelectorAll('svg.chart').length,
            scoreRows: document.querySelectorAll('table.scores tr').length,
            itemScores: document.querySelectorAll('section.item[data-score]').length,
            legend: document.querySelectorAll('.legend .legend-bar').length,
            imageBox: (document.querySelector('img.image') as HTMLElement | null)?.getBoundingClientRect().width ?? 0,
          };
        });
        // the test split of 120 images has 12: all on one page, each with its CIDEr
        expect(state.items).toBe(12);
        expect(state.count).toContain('of 12 images');
        expect(state.itemScores).toBe(12);
        expect(state.broken).toBe(0);
        expect(state.images).toBeGreaterThanOrEqual(state.items * 2);
        expect(state.generated.every((t) => t.startsWith('generated caption'))).toBe(true);
        expect(state.references).toBe(state.items * 5);
        // loss per step, val METEOR, val CIDEr, per-image CIDEr histogram
        expect(state.charts).toBe(4);
        expect(state.scoreRows).toBe(8);
        expect(state.legend).toBe(1);
        expect(state.imageBox).toBeGreaterThan(100);
        expect(errors).toEqual([]);
        // per-image CIDEr of every test image; their mean is the corpus CIDEr (CIDEr-D averages over images)
        const ciders: number[] = await page.evaluate(() => JSON.parse(document.getElementById('gallery-data')!.textContent!).items.map((i: { score: number }) => i.score));
        expect(ciders).toHaveLength(12);
        expect(ciders.reduce((a, b) => a + b, 0) / ciders.length).toBeCloseTo(corpus.CIDEr!, 3);
        await page.screenshot({ path: path.join(out, 'report.png'), fullPage: false });
        expect(existsSync(path.join(out, 'report.png'))).toBe(true);
        if (process.env.S2CPNET_REPORT_SHOTS) {
          await page.screenshot({ path: path.join(process.env.S2CPNET_REPORT_SHOTS, 'demo-run-report-full.png'), fullPage: true });
          copyFileSync(path.join(out, 'report.html'), path.join(process.env.S2CPNET_REPORT_SHOTS, 'demo-run-report.html'));
        }
      } finally {
        await browser.close();
      }
    },
    240_000,
  );
});
