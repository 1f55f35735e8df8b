/// <reference lib="dom" />
/**
 * The demo report and the caption report, built by hand (no training), opened in headless Chromium: paging, sorting
 * and filtering work, overlays are drawn, nothing logs an error; screenshots go to S2CPNET_REPORT_SHOTS (or a temp
 * folder) for a person to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { renderReport } from '../demo/report';
import { renderCaptionReport } from './caption-report';
import { captionReportInput, demoReportInput } from './testing-report-fixtures.test-util';
import { haveChromium, launchChromium } from '../../../../scripts/chromium';


let dir = '';
let shots = '';
let browser: Browser | null = null;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-report-browser-'));
  shots = process.env.S2CPNET_REPORT_SHOTS ?? dir;
  mkdirSync(shots, { recursive: true });
  if (!haveChromium) return;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function open(html: string, name: string): Promise<{ page: Page; errors: string[] }> {
  const file = path.join(dir, `${name}.html`);
  writeFileSync(file, html);
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`file://${file}`);
  await page.waitForSelector('.gallery[data-ready="true"]');
  return { page, errors };
}

/** Canvas overlays that have something drawn (not all pixels equal). */
async function drawnOverlays(page: Page): Promise<{ total: number; drawn: number }> {
  await page.waitForTimeout(150);
  return page.evaluate(() => {
    const canvases = Array.from(document.querySelectorAll('canvas.overlay')) as HTMLCanvasElement[];
    const drawn = canvases.filter((c) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      for (let i = 4; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
      return false;
    }).length;
    return { total: canvases.length, drawn };
  });
}

describe.runIf(haveChromium)('reports in headless Chromium', () => {
  it('demo report: every image paged, sort by worst/best CIDEr, filter, overlays, legend, coarse-grid note', async () => {
    const input = demoReportInput(60, 2);
    const { page, errors } = await open(renderReport(input), 'demo');
    const first = await page.evaluate(() => ({
      items: document.querySelectorAll('section.item').length,
      pages: document.querySelectorAll('.pager.top button.page').length,
      count: document.querySelector('.count')?.textContent ?? '',
      legend: document.querySelectorAll('.legend .legend-bar').length,
      coarse: document.querySelectorAll('.coarse-note').length,
      refLabels: Array.from(document.querySelectorAll('section.item')[0]!.querySelectorAll('.references .label')).map((e) => e.textContent),
      genLabel: document.querySelector('section.item .generated .label')?.textContent,
      scores: Array.from(document.querySelectorAll('section.item')).map((s) => Number(s.getAttribute('data-score'))),
      broken: (Array.from(document.querySelectorAll('img')) as HTMLImageElement[]).filter((i) => !i.complete || i.naturalWidth === 0).length,
      imageBox: document.querySelector('section.item img.image')!.getBoundingClientRect().width,
      axisLabels: document.querySelectorAll('svg.chart .axis-label').length,
      xTicks: document.querySelectorAll('svg.chart .tick.x').length,
      yTicks: document.querySelectorAll('svg.chart .tick.y').length,
      markers: document.querySelectorAll('svg.chart circle').length,
    }));
    expect(first.items).toBe(24);
    expect(first.pages).toBe(3);
    expect(first.count).toContain('of 60');
    expect(first.legend).toBe(1);
    expect(first.coarse).toBeGreaterThan(1); // the global note and one per item
    expect(first.refLabels).toEqual(['reference 1', 'reference 2', 'reference 3', 'reference 4', 'reference 5']);
    expect(first.genLabel).toBe('generated caption');
    // default sort: best first
    expect(first.scores).toEqual([...first.scores].sort((a, b) => b - a));
    expect(first.broken).toBe(0);
    expect(first.imageBox).toBeGreaterThanOrEqual(192);
    expect(first.axisLabels).toBeGreaterThanOrEqual(6);
    expect(first.xTicks).toBeGreaterThan(4);
    expect(first.yTicks).toBeGreaterThan(4);
    expect(first.markers).toBeGreaterThan(120);
    const overlays = await drawnOverlays(page);
    expect(overlays.total).toBeGreaterThan(24);
    expect(overlays.drawn).toBe(overlays.total);
    await page.screenshot({ path: path.join(shots, 'demo-report-top.png') });
    await page.locator('section.item').first().screenshot({ path: path.join(shots, 'demo-report-item.png') });

    // next page
    await page.locator('.pager.top button.next').click();
    const second = await page.evaluate(() => ({
      page: document.querySelector('.gallery')!.getAttribute('data-page'),
      ids: Array.from(document.querySelectorAll('section.item')).map((s) => s.getAttribute('data-id')),
      current: document.querySelector('.pager.top button.current')?.textContent,
    }));
    expect(second.page).toBe('1');
    expect(second.current).toBe('2');
    expect(second.ids).toHaveLength(24);
    await page.locator('.pager.top button[data-page="2"]').click();
    expect(await page.locator('section.item').count()).toBe(12);

    // worst first: the first item has the lowest CIDEr of all
    await page.selectOption('select.sort', 'worst');
    const lowest = Math.min(...input.items.map((i) => i.cider!));
    const worst = await page.evaluate(() => ({
      page: document.querySelector('.gallery')!.getAttribute('data-page'),
      score: Number(document.querySelector('section.item')!.getAttribute('data-score')),
      text: document.querySelector('section.item .score')?.textContent,
    }));
    expect(worst.page).toBe('0');
    expect(worst.score).toBe(lowest);
    expect(worst.text).toBe(`CIDEr ${lowest.toFixed(3)}`);
    await page.selectOption('select.sort', 'name');
    const names = await page.evaluate(() => Array.from(document.querySelectorAll('section.item')).map((s) => s.getAttribute('data-id')!));
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));

    // filter on a word of one caption
    const word = input.items[5]!.references[0]!.split(' ').find((w) => w.length > 4)!;
    await page.fill('input.filter', word);
    const filtered = await page.evaluate(() => Array.from(document.querySelectorAll('section.item')).map((s) => s.textContent ?? ''));
    expect(filtered.length).toBeGreaterThan(0);
    expect(filtered.every((t) => t.toLowerCase().includes(word.toLowerCase()))).toBe(true);
    await page.fill('input.filter', 'zzzz-no-such-word');
    expect(await page.locator('.items .empty').count()).toBe(1);
    await page.fill('input.filter', '');

    // clicking a word makes it the large view
    const item = page.locator('section.item').first();
    await item.locator('.words figure').nth(1).click();
    expect(await item.locator('.words figure').nth(1).getAttribute('class')).toBe('selected');
    await page.screenshot({ path: path.join(shots, 'demo-report-full.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('caption report: fine-grid overlays smoothed, large non-square image scaled down, categories, paging, failures', async () => {
    const input = captionReportInput(30, 7);
    const html = renderCaptionReport(input);
    const { page, errors } = await open(html, 'caption');
    const state = await page.evaluate(() => ({
      items: document.querySelectorAll('section.item').length,
      pages: document.querySelectorAll('.pager.top button.page').length,
      legend: document.querySelectorAll('.legend .legend-bar').length,
      coarse: document.querySelectorAll('.coarse-note').length,
      cats: document.querySelectorAll('section.item .cat').length,
      catText: document.querySelector('section.item .cat')?.textContent,
      failures: document.querySelectorAll('ul.failures li').length,
      masks: document.querySelectorAll('section.item img.mask').length,
      second: (() => {
        const img = document.querySelectorAll('section.item img.image')[1] as HTMLImageElement;
        return { w: img.naturalWidth, h: img.naturalHeight, boxW: img.getBoundingClientRect().width, boxH: img.getBoundingClientRect().height };
      })(),
    }));
    expect(state.items).toBe(24);
    expect(state.pages).toBe(2);
    expect(state.legend).toBe(1);
    expect(state.coarse).toBe(0);
    expect(state.cats).toBe(48);
    expect(state.catText).toMatch(/^building \d+%$/);
    expect(state.failures).toBe(1);
    expect(state.masks).toBe(23);
    expect(state.second.w).toBe(256);
    expect(state.second.h).toBe(171);
    expect(Math.round(state.second.boxH / state.second.boxW * 100)).toBe(67);
    const overlays = await drawnOverlays(page);
    expect(overlays.drawn).toBe(overlays.total);
    await page.screenshot({ path: path.join(shots, 'caption-report-top.png') });
    await page.locator('section.item').nth(1).screenshot({ path: path.join(shots, 'caption-report-item.png') });
    await page.locator('.pager.bottom button.next').click();
    expect(await page.locator('section.item').count()).toBe(6);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('size: 400 demo items (the demo test split) stay a few MB', () => {
    const html = renderReport(demoReportInput(400, 2, 21));
    const file = path.join(shots, 'demo-400-size.html');
    writeFileSync(file, html);
    const bytes = statSync(file).size;
    writeFileSync(path.join(shots, 'demo-400-size.txt'), `${bytes}\n`);
    expect(bytes).toBeLessThan(8_000_000);
  }, 120_000);
});
