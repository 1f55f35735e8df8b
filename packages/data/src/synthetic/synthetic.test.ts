import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '@s2cpnet/core';
import { decodeImageFile } from '../image/codec';
import { FolderMaskProvider } from '../masks/folder';
import { renderMaskView } from '../masks/render';
import {
  SCENE_TYPES,
  SYNTHETIC_CLASSES,
  SYNTHETIC_CLASS_WORDS,
  generateSyntheticAerialSet,
  syntheticSplitSizes,
  writeSyntheticAerialSet,
  type SyntheticAerialSet,
  type SyntheticImage,
} from './index';
import { countWord } from './captions';

const root = mkdtempSync(path.join(tmpdir(), 's2cpnet-synthetic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let large: SyntheticAerialSet;
beforeAll(() => {
  large = generateSyntheticAerialSet({ seed: 1, count: 600 });
});

function classCount(image: SyntheticImage, className: string): number {
  return image.objects.filter((object) => object.className === className).length;
}

/** Shape check of the Karpathy caption layout; returns the problems found (empty = valid). */
function karpathyProblems(json: unknown): string[] {
  const problems: string[] = [];
  const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
  if (!isRecord(json) || !Array.isArray(json.images)) return ['$.images: expected an array'];
  const sentids = new Set<number>();
  const imgids = new Set<number>();
  json.images.forEach((image: unknown, i: number) => {
    const at = `$.images[${i}]`;
    if (!isRecord(image)) return problems.push(`${at}: expected an object`);
    if (typeof image.filename !== 'string' || image.filename === '') problems.push(`${at}.filename: expected a name`);
    if (!Number.isInteger(image.imgid) || imgids.has(image.imgid as number)) problems.push(`${at}.imgid: expected a unique integer`);
    imgids.add(image.imgid as number);
    if (!['train', 'val', 'test', 'restval'].includes(image.split as string)) problems.push(`${at}.split: ${String(image.split)}`);
    if (!Array.isArray(image.sentences) || image.sentences.length === 0) return problems.push(`${at}.sentences: expected a list`);
    if (!Array.isArray(image.sentids)) return problems.push(`${at}.sentids: expected a list`);
    image.sentences.forEach((sentence: unknown, j: number) => {
      const sat = `${at}.sentences[${j}]`;
      if (!isRecord(sentence)) return problems.push(`${sat}: expected an object`);
      const tokens = sentence.tokens;
      if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === 'string' && t.length > 0)) {
        problems.push(`${sat}.tokens: expected non-empty strings`);
      }
      if (typeof sentence.raw !== 'string') problems.push(`${sat}.raw: expected a string`);
      else if (Array.isArray(tokens) && tokens.join(' ') !== sentence.raw.toLowerCase()) problems.push(`${sat}: tokens differ from raw`);
      if (sentence.imgid !== image.imgid) problems.push(`${sat}.imgid: ${String(sentence.imgid)} != ${String(image.imgid)}`);
      if (!Number.isInteger(sentence.sentid) || sentids.has(sentence.sentid as number)) problems.push(`${sat}.sentid: not unique`);
      sentids.add(sentence.sentid as number);
      if ((image.sentids as unknown[])[j] !== sentence.sentid) problems.push(`${at}.sentids[${j}]: does not match`);
    });
    if ((image.sentids as unknown[]).length !== image.sentences.length) problems.push(`${at}.sentids: wrong length`);
  });
  return problems;
}

describe('generateSyntheticAerialSet', () => {
  it('is deterministic for a seed and different for another seed', () => {
    const a = generateSyntheticAerialSet({ seed: 4, count: 12 });
    const b = generateSyntheticAerialSet({ seed: 4, count: 12 });
    const c = generateSyntheticAerialSet({ seed: 5, count: 12 });
    a.images.forEach((image, i) => {
      const other = b.images[i]!;
      expect(Buffer.from(image.image.data).equals(Buffer.from(other.image.data))).toBe(true);
      expect(Buffer.from(image.objectLabels.labels.buffer).equals(Buffer.from(other.objectLabels.labels.buffer))).toBe(true);
      expect(image.captions).toEqual(other.captions);
      expect(image.split).toBe(other.split);
    });
    const differing = a.images.filter((image, i) => !Buffer.from(image.image.data).equals(Buffer.from(c.images[i]!.image.data)));
    expect(differing.length).toBe(12);
  });

  it('makes image i the same whatever the count', () => {
    const few = generateSyntheticAerialSet({ seed: 2, count: 3 });
    const more = generateSyntheticAerialSet({ seed: 2, count: 30 });
    few.images.forEach((image, i) => {
      expect(Buffer.from(image.image.data).equals(Buffer.from(more.images[i]!.image.data))).toBe(true);
      expect(image.captions).toEqual(more.images[i]!.captions);
    });
  });

  it('splits 80/10/10 by default and honours other fractions', () => {
    const counts = { train: 0, val: 0, test: 0 };
    for (const image of large.images) counts[image.split]++;
    expect(counts).toEqual({ train: 480, val: 60, test: 60 });
    const custom = generateSyntheticAerialSet({ seed: 1, count: 50, splits: { train: 0.6, val: 0.2, test: 0.2 } });
    expect(custom.images.filter((image) => image.split === 'test')).toHaveLength(10);
    expect(syntheticSplitSizes(7, { train: 1, val: 0, test: 0 })).toEqual({ train: 7, val: 0, test: 0 });
    expect(syntheticSplitSizes(1000)).toEqual({ train: 800, val: 100, test: 100 });
  });

  it('covers every scene type and lists the classes', () => {
    expect(new Set(large.images.map((image) => image.sceneType))).toEqual(new Set(SCENE_TYPES));
    expect(large.classes).toEqual([...SYNTHETIC_CLASSES]);
    const used = new Set(large.images.flatMap((image) => image.objects.map((object) => object.className)));
    expect(used).toEqual(new Set(SYNTHETIC_CLASSES));
  });

  it('keeps exact object masks: labels, areas and boxes agree with the label map', () => {
    for (const image of large.images.slice(0, 80)) {
      const { width, height, labels } = image.objectLabels;
      expect(width).toBe(64);
      expect(height).toBe(64);
      expect(image.image.data.length).toBe(64 * 64 * 3);
      const area = new Array<number>(image.objects.length + 1).fill(0);
      for (const label of labels) area[label]!++;
      image.objects.forEach((object, i) => {
        expect(object.label).toBe(i + 1);
        expect(SYNTHETIC_CLASSES).toContain(object.className);
        expect(object.area).toBe(area[object.label]);
        expect(object.area).toBeGreaterThan(0);
        const { x, y, width: bw, height: bh } = object.bbox;
        let outside = 0;
        let touchesLeft = false;
        let touchesTop = false;
        for (let py = 0; py < height; py++) {
          for (let px = 0; px < width; px++) {
            if (labels[py * width + px] !== object.label) continue;
            if (px < x || px >= x + bw || py < y || py >= y + bh) outside++;
            if (px === x) touchesLeft = true;
            if (py === y) touchesTop = true;
          }
        }
        expect(outside).toBe(0);
        expect(touchesLeft && touchesTop).toBe(true); // the box is tight
      });
    }
  });

  it('writes five distinct lower-case captions of 6-18 words per image', () => {
    for (const image of large.images) {
      expect(image.captions).toHaveLength(5);
      expect(new Set(image.captions).size).toBe(5);
      for (const caption of image.captions) {
        expect(caption).toMatch(/^[a-z]+( [a-z]+)*$/);
        const words = caption.split(' ').length;
        expect(words).toBeGreaterThanOrEqual(6);
        expect(words).toBeLessThanOrEqual(18);
      }
    }
  });

  it('mentions only objects that are present, and the main objects of each scene', () => {
    const wordToClass = new Map<string, string>();
    for (const [className, words] of Object.entries(SYNTHETIC_CLASS_WORDS)) for (const word of words) wordToClass.set(word, className);
    const mainClasses: Record<string, string[]> = {
      residential: ['building', 'road'],
      farmland: ['farmland'],
      parking: ['parking lot', 'car'],
      river: ['river'],
      lake: ['lake'],
      playground: ['playground', 'football field'],
      forest: ['tree'],
      intersection: ['road'],
    };
    for (const image of large.images) {
      const present = new Set(image.objects.map((object) => object.className));
      const mentioned = new Set<string>();
      for (const caption of image.captions) {
        for (const word of caption.split(' ')) {
          const className = wordToClass.get(word);
          if (className) mentioned.add(className);
        }
      }
      for (const className of mentioned) expect(present, `${image.fileName}: ${image.captions.join(' | ')}`).toContain(className);
      for (const className of mainClasses[image.sceneType]!) expect(mentioned).toContain(className);
    }
  });

  it('states counts of buildings, cars and farmland that match the objects', () => {
    const countPattern = /\b(a|one|two|three|several|many) (?:(?:red|white|blue|grey) )?(buildings?|houses?|cars?|pieces of)\b/g;
    let checked = 0;
    for (const image of large.images) {
      for (const caption of image.captions) {
        for (const match of caption.matchAll(countPattern)) {
          const [, word, noun] = match;
          const className = noun!.startsWith('car') ? 'car' : noun === 'pieces of' ? 'farmland' : 'building';
          const n = classCount(image, className);
          expect(word === 'a' ? 1 : word, `${image.fileName}: ${caption}`).toBe(word === 'a' ? n : countWord(n));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('keeps the vocabulary moderate', () => {
    const vocabulary = new Set(large.images.flatMap((image) => image.captions.flatMap((caption) => caption.split(' '))));
    expect(vocabulary.size).toBeGreaterThanOrEqual(80);
    expect(vocabulary.size).toBeLessThanOrEqual(200);
  });

  it('rejects bad options with the option named', () => {
    expect(() => generateSyntheticAerialSet({ seed: 1.5, count: 1 })).toThrow(ConfigError);
    expect(() => generateSyntheticAerialSet({ seed: 1, count: -1 })).toThrow(/\$\.count/);
    expect(() => generateSyntheticAerialSet({ seed: 1, count: 1, size: 8 })).toThrow(/\$\.size.*found 8/);
    expect(() => generateSyntheticAerialSet({ seed: 1, count: 1, splits: { train: 1, val: -1, test: 0 } })).toThrow(/\$\.splits\.val/);
  });

  it('scales to other sizes', () => {
    const set = generateSyntheticAerialSet({ seed: 3, count: 16, size: 96 });
    for (const image of set.images) {
      expect(image.image.width).toBe(96);
      expect(image.objectLabels.labels.length).toBe(96 * 96);
      expect(image.objects.length).toBeGreaterThan(0);
    }
  });
});

describe('writeSyntheticAerialSet', () => {
  it('writes images, mask views and a valid Karpathy dataset.json, byte-identical for a seed', async () => {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    const written = await writeSyntheticAerialSet(a, { seed: 9, count: 20 });
    await writeSyntheticAerialSet(b, { seed: 9, count: 20 });
    expect(written.splitSizes).toEqual({ train: 16, val: 2, test: 2 });
    expect(readdirSync(a).sort()).toEqual(['annotations.json', 'dataset.json', 'images', 'masks', 'synthetic.json']);
    for (const sub of ['images', 'masks']) {
      const names = readdirSync(path.join(a, sub)).sort();
      expect(names).toHaveLength(20);
      for (const name of names) expect(readFileSync(path.join(a, sub, name)).equals(readFileSync(path.join(b, sub, name)))).toBe(true);
    }
    for (const file of ['dataset.json', 'annotations.json', 'synthetic.json']) {
      expect(readFileSync(path.join(a, file)).equals(readFileSync(path.join(b, file)))).toBe(true);
    }

    const dataset = JSON.parse(readFileSync(written.datasetFile, 'utf8')) as {
      images: Array<{ filename: string; split: string; sentences: Array<{ raw: string }> }>;
    };
    expect(karpathyProblems(dataset)).toEqual([]);
    expect(dataset.images).toHaveLength(20);
    const generated = generateSyntheticAerialSet({ seed: 9, count: 20 });
    for (const [i, entry] of dataset.images.entries()) {
      const image = generated.images[i]!;
      expect(entry.filename).toBe(image.fileName);
      expect(entry.split).toBe(image.split);
      expect(entry.sentences.map((s) => s.raw)).toEqual(image.captions);
    }

    // The image file is the scene; the mask file is its exact object masks rendered as the mask view.
    const first = generated.images[0]!;
    const png = await decodeImageFile(path.join(written.imagesDir, first.fileName));
    expect(Buffer.from(png.data).equals(Buffer.from(first.image.data))).toBe(true);
    const mask = await decodeImageFile(path.join(written.masksDir, first.fileName));
    expect(Buffer.from(mask.data).equals(Buffer.from(renderMaskView(first.image, first.objectLabels).data))).toBe(true);
    const segments = await new FolderMaskProvider({ dir: written.masksDir }).labelMap(first.image, first.fileName);
    expect(Math.max(...segments.labels)).toBeGreaterThanOrEqual(1);
  });

  it('replaces an earlier synthetic set but refuses to replace other folders', async () => {
    const dir = path.join(root, 'again');
    await writeSyntheticAerialSet(dir, { seed: 1, count: 4 });
    await writeSyntheticAerialSet(dir, { seed: 1, count: 6 });
    expect(readdirSync(path.join(dir, 'images'))).toHaveLength(6);
    const precious = path.join(root, 'precious');
    mkdirSync(precious);
    writeFileSync(path.join(precious, 'notes.txt'), 'keep me');
    await expect(writeSyntheticAerialSet(precious, { seed: 1, count: 2 })).rejects.toBeInstanceOf(InputError);
    expect(readFileSync(path.join(precious, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});
