import { describe, expect, it } from 'vitest';
import * as vm from 'node:vm';
import { VIRIDIS_STOPS, cieLightness, viridis, viridisCssGradient } from '@s2cpnet/data';
import { chartSvg, formatTick, movingAverage, niceTicks } from './charts';
import { COARSE_GRID_MAX, attentionLegendHtml, coarseGridNote, galleryData, galleryScript, scriptJson } from './gallery';
import { renderCaptionReport, thumbnail } from './caption-report';
import { renderReport, stepLossSeries } from '../demo/report';
import { captionReportInput, demoReportInput } from './testing-report-fixtures.test-util';

interface ClientItem {
  i: number;
  id: string;
  cap: string;
  refs: string[];
  cats: [string, number][];
  score: number | null;
}
interface Client {
  viridis(t: number): number[];
  normalise(w: number[]): { values: number[]; peak: number };
  upsample(values: number[], grid: number, w: number, h: number, smooth: boolean): Float32Array;
  sortItems(items: ClientItem[], sort: string): ClientItem[];
  filterItems(items: ClientItem[], query: string): ClientItem[];
  pageCount(n: number, size: number): number;
  pageSlice<T>(list: T[], page: number, size: number): T[];
  pageButtons(page: number, total: number): (number | null)[];
}

/** The page script's pure helpers, run outside a browser. */
const client = vm.runInNewContext(galleryScript(), {}) as Client;

const item = (i: number, id: string, score: number | null, cap = '', cats: [string, number][] = []): ClientItem => ({ i, id, cap, refs: [], cats, score });

describe('colour map', () => {
  it('viridis: lightness rises strictly from low to high, endpoints are the published colours', () => {
    const samples = Array.from({ length: 101 }, (_, k) => cieLightness(viridis(k / 100)));
    for (let k = 1; k < samples.length; k++) expect(samples[k]!).toBeGreaterThan(samples[k - 1]!);
    expect(viridis(0)).toEqual([0x44, 0x01, 0x54]);
    expect(viridis(1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(viridis(-3)).toEqual(viridis(0));
    expect(viridis(Number.NaN)).toEqual(viridis(0));
    expect(samples[100]! - samples[0]!).toBeGreaterThan(70);
  });

  it('the page script uses the same table', () => {
    for (const t of [0, 0.13, 0.5, 0.77, 1]) expect(client.viridis(t).map((v) => Math.round(v * 1000))).toEqual(viridis(t).map((v) => Math.round(v * 1000)));
    expect(viridisCssGradient()).toContain(`rgb(${VIRIDIS_STOPS[0]!.join(',')}) 0.0%`);
  });
});

describe('charts', () => {
  it('nice ticks', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.18, 0.24, 4)).toEqual([0.18, 0.2, 0.22, 0.24]);
    expect(niceTicks(1, 3, 6, true)).toEqual([1, 2, 3]);
    expect(formatTick(0.2, 0.02)).toBe('0.20');
    expect(formatTick(200, 50)).toBe('200');
  });

  it('a chart has tick labels on both axes, axis titles and a marker per point', () => {
    const points = [1, 2, 3].map((x) => ({ x, y: 1 / x }));
    const svg = chartSvg({ title: 'val CIDEr', xLabel: 'epoch', yLabel: 'CIDEr', series: [{ name: 'CIDEr', points }] });
    expect(svg.match(/class="tick x"/g)!.length).toBe(3);
    expect(svg.match(/class="tick y"/g)!.length).toBeGreaterThanOrEqual(3);
    expect(svg).toContain('>epoch</text>');
    expect(svg).toContain('>CIDEr</text>');
    expect(svg.match(/<circle /g)!.length).toBe(3);
    expect(chartSvg({ title: 'x', xLabel: 'a', yLabel: 'b', series: [{ name: 'x', points: [] }] })).toContain('no data');
  });

  it('per-step loss: faint markers and a moving average, with a legend', () => {
    const points = Array.from({ length: 100 }, (_, i) => ({ x: i + 1, y: i % 2 }));
    expect(movingAverage(points, 3)[1]!.y).toBeCloseTo(1 / 3);
    const series = stepLossSeries(points);
    expect(series).toHaveLength(2);
    const svg = chartSvg({ title: 'loss', xLabel: 'optimiser step', yLabel: 'loss', series });
    expect(svg).toContain('class="legend-entry"');
    expect(svg.match(/<circle /g)!.length).toBe(100);
  });
});

describe('attention helpers of the page script', () => {
  it('normalises per word and reports the peak over uniform', () => {
    const { values, peak } = client.normalise([0.1, 0.2, 0.3, 0.4]);
    expect(values.map((v) => Math.round(v * 100))).toEqual([0, 33, 67, 100]);
    expect(peak).toBeCloseTo(1.6);
    expect(client.normalise([0.25, 0.25, 0.25, 0.25])).toEqual({ values: [0.5, 0.5, 0.5, 0.5], peak: 1 });
  });

  it('upsamples smoothly (fine grids) or as flat cells (coarse grids)', () => {
    const flat = client.upsample([0, 1, 0, 1], 2, 8, 8, false);
    expect(Array.from(flat.slice(0, 8))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    const smooth = client.upsample([0, 1, 0, 1], 2, 8, 8, true);
    const row = Array.from(smooth.slice(0, 8));
    for (let k = 1; k < 8; k++) expect(row[k]!).toBeGreaterThanOrEqual(row[k - 1]!);
    expect(row[0]).toBe(0);
    expect(row[7]).toBe(1);
    expect(new Set(row.map((v) => v.toFixed(3))).size).toBeGreaterThan(2);
  });

  it('coarse-grid note for G <= 2 only', () => {
    expect(COARSE_GRID_MAX).toBe(2);
    expect(coarseGridNote(2)).toMatch(/too coarse|cannot localise/);
    expect(coarseGridNote(1)).toContain('whole image');
    expect(coarseGridNote(3)).toBeNull();
    expect(attentionLegendHtml([2, 2])).toContain('coarse-note');
    expect(attentionLegendHtml([7])).not.toContain('coarse-note');
    expect(attentionLegendHtml([7])).toContain('high attention');
  });
});

describe('sorting, filtering, paging', () => {
  const items = [item(0, 'b10.png', 0.5, 'a red roof'), item(1, 'b2.png', 2.1, 'two roads'), item(2, 'a.png', null, 'a lake'), item(3, 'c.png', 0.1, 'Red cars', [['car', 0.9]])];

  it('sorts best/worst by score (unscored last), by name (numeric), by input order, by confidence', () => {
    expect(client.sortItems(items, 'best').map((i) => i.id)).toEqual(['b2.png', 'b10.png', 'c.png', 'a.png']);
    expect(client.sortItems(items, 'worst').map((i) => i.id)).toEqual(['c.png', 'b10.png', 'b2.png', 'a.png']);
    expect(client.sortItems(items, 'name').map((i) => i.id)).toEqual(['a.png', 'b2.png', 'b10.png', 'c.png']);
    expect(client.sortItems(items, 'order').map((i) => i.i)).toEqual([0, 1, 2, 3]);
    expect(client.sortItems(items, 'confidence')[0]!.id).toBe('c.png');
    expect(items.map((i) => i.i)).toEqual([0, 1, 2, 3]); // not in place
  });

  it('filters on every word, case-insensitively, over name, caption and categories', () => {
    expect(client.filterItems(items, 'red').map((i) => i.i)).toEqual([0, 3]);
    expect(client.filterItems(items, 'RED roof').map((i) => i.i)).toEqual([0]);
    expect(client.filterItems(items, 'car').map((i) => i.i)).toEqual([3]);
    expect(client.filterItems(items, '  ')).toHaveLength(4);
  });

  it('pages', () => {
    expect(client.pageCount(400, 24)).toBe(17);
    expect(client.pageCount(0, 24)).toBe(1);
    expect(client.pageSlice(Array.from({ length: 50 }, (_, k) => k), 2, 24)).toEqual([48, 49]);
    expect(client.pageButtons(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(client.pageButtons(8, 17)).toEqual([0, null, 6, 7, 8, 9, 10, null, 16]);
    expect(client.pageButtons(0, 17)).toEqual([0, 1, 2, null, 16]);
  });
});

describe('report HTML', () => {
  it('demo report: legend, coarse-grid note, all items in the data, no raw </script> from captions', () => {
    const input = demoReportInput(30, 2);
    input.items[0]!.generated = 'evil </script><script>alert(1)</script>';
    const html = renderReport(input);
    expect(html).toContain('class="legend"');
    expect(html).toContain('coarse-note global');
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    const data = JSON.parse(html.match(/<script type="application\/json" id="gallery-data">([\s\S]*?)<\/script>/)![1]!);
    expect(data.items).toHaveLength(30);
    expect(data.items[0].cap).toBe('evil </script><script>alert(1)</script>');
    expect(data.config.sort).toBe('best');
    expect(data.items[0].att[0][1]).toHaveLength(4);
  });

  it('compact data: weights rounded to 4 decimals', () => {
    const data = galleryData(
      [{ id: 'x', image: 'data:,', caption: 'a', categories: [], grid: 2, score: 1 / 3, attention: [{ word: 'a', weights: [1 / 3, 1 / 6, 0.25, 0.25] }] }],
      { sorts: ['order'] },
    ) as { items: { att: [string, number[]][]; score: number }[] };
    expect(data.items[0]!.att[0]![1]).toEqual([0.3333, 0.1667, 0.25, 0.25]);
    expect(data.items[0]!.score).toBe(0.3333);
    expect(scriptJson('</script>')).toBe('"\\u003c/script>"');
  });

  it('caption report: legend without a coarse note for a fine grid, large images scaled down, failures listed', () => {
    const input = captionReportInput(5, 7);
    const html = renderCaptionReport(input);
    expect(html).toContain('class="legend"');
    expect(html).not.toContain('coarse-note global');
    expect(html).toContain('class="failures"');
    expect(thumbnail(input.items[1]!.image, 256)).toMatchObject({ width: 256, height: 171 });
    expect(thumbnail(input.items[0]!.image, 256)).toBe(input.items[0]!.image);
    const coarse = renderCaptionReport(captionReportInput(3, 2));
    expect(coarse).toContain('coarse-note global');
    expect(renderCaptionReport({ title: 't', settings: {}, items: [] })).toContain('No image was captioned');
  });
});
