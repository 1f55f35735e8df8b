/// <reference lib="dom" />
/**
 * The scene report in headless Chromium: the shrunk scene and the tile grid are shown, pointing at a tile shows its
 * caption, the category select paints the heat layer with a legend, and nothing logs an error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { RgbImage } from '@s2cpnet/data';
import { captionScene, type SceneCaptioner } from './caption-scene';
import { writeSceneReport } from './report';
import { writeTiff } from './tiff-writer.test-util';
import { haveChromium, launchChromium } from '../../../scripts/chromium';


let dir = '';
let browser: Browser | null = null;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-scene-report-'));
  if (!haveChromium) return;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Captions each tile by its mean brightness; categories 'bright' (probability = brightness) and, on odd tiles, "water <x>". */
const fakeCaptioner: SceneCaptioner = {
  inputSize: 32,
  async caption(inputs) {
    return (inputs as RgbImage[]).map((image, k) => {
      const mean = image.data.reduce((s, v) => s + v, 0) / image.data.length / 255;
      return {
        caption: `tile of brightness ${mean.toFixed(2)} <b>not bold</b>`,
        categories: [{ name: 'bright', probability: 0.5 + mean / 2 }, ...(k % 2 ? [{ name: 'water "x"', probability: 0.9 }] : [])],
        grid: 1,
      };
    });
  },
};

describe.runIf(haveChromium)('scene report in headless Chromium', () => {
  it('shows the scene and grid, the caption of the tile under the pointer, and the category heat layer', async () => {
    const width = 160;
    const height = 96;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(Math.round((x / width) * 255), (y * width + x) * 3, (y * width + x) * 3 + 3);
    // The top-left 32 x 32 tile is nodata: skipped, drawn dashed.
    for (let y = 0; y < 32; y++) data.fill(0, y * width * 3, (y * width + 32) * 3);
    const scene = path.join(dir, 'scene.tif');
    writeFileSync(scene, writeTiff([{ width, height, samples: 3, bits: 8, data, tileSize: 16 }], { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3, 0.3] }, '0'));
    const result = await captionScene(fakeCaptioner, scene, { tile: 32, previewSize: 120 });
    expect(result.skipped).toHaveLength(1);
    const file = path.join(dir, 'report.html');
    await writeSceneReport(file, result, { settings: { checkpoint: 'fake' } });
    expect(readFileSync(file, 'utf8')).not.toMatch(/<b>not bold<\/b>/);

    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}`);
    await page.waitForSelector('.scene-map[data-ready="true"]');
    const layout = await page.evaluate(() => ({
      img: (document.querySelector('.scene-map img') as HTMLImageElement).naturalWidth,
      rects: document.querySelectorAll('.scene-map rect').length,
      skipped: document.querySelectorAll('.scene-map rect.skipped').length,
      options: Array.from(document.querySelectorAll('#category option')).map((o) => (o as HTMLOptionElement).value),
      legendHidden: (document.querySelector('.legend') as HTMLElement).hidden,
    }));
    expect(layout).toEqual({ img: 120, rects: 15, skipped: 1, options: ['', 'bright', 'water "x"'], legendHidden: true });

    // Point at tile 7 (row 1, col 2): its caption appears, as text.
    const box = (await page.locator('.scene-map rect[data-index="7"]').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const caption = result.tiles.find((t) => t.index === 7)!.caption;
    await expect.poll(() => page.locator('#tile-info .caption').textContent()).toBe(caption);
    expect(await page.locator('#tile-info .where').textContent()).toContain('row 1, col 2');
    // The skipped tile says so.
    const skippedBox = (await page.locator('.scene-map rect[data-index="0"]').boundingBox())!;
    await page.mouse.move(skippedBox.x + 3, skippedBox.y + 3);
    await expect.poll(() => page.locator('#tile-info .caption').textContent()).toMatch(/skipped: 100% nodata/);

    // The heat layer: brighter tiles (further right) get a higher probability and a lighter viridis fill.
    await page.selectOption('#category', 'bright');
    const fills = await page.evaluate(() =>
      Array.from(document.querySelectorAll('.scene-map rect')).map((r) => ({ index: Number((r as SVGRectElement).dataset.index), fill: (r as SVGRectElement).style.fill, p: (r as SVGRectElement).dataset.probability })),
    );
    expect(fills.find((f) => f.index === 0)!.fill).toBe('transparent');
    const left = fills.find((f) => f.index === 5)!;
    const right = fills.find((f) => f.index === 9)!;
    expect(Number(right.p)).toBeGreaterThan(Number(left.p));
    expect(left.fill).toMatch(/^rgb/);
    expect(right.fill).not.toBe(left.fill);
    expect(await page.evaluate(() => (document.querySelector('.legend') as HTMLElement).hidden)).toBe(false);
    // A category predicted on some tiles only leaves the others unfilled.
    await page.selectOption('#category', 'water "x"');
    const water = await page.evaluate(() => Array.from(document.querySelectorAll('.scene-map rect')).filter((r) => (r as SVGRectElement).style.fill !== 'transparent').length);
    expect(water).toBeGreaterThan(0);
    expect(water).toBeLessThan(14);
    await page.screenshot({ path: path.join(process.env.S2CPNET_REPORT_SHOTS ?? dir, 'scene-report.png') });
    expect(errors).toEqual([]);
    await page.close();
  });
});
