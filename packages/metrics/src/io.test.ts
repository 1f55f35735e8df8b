import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { MetricsInputError } from './errors.js';
import { DEFAULT_MAX_CAPTION_FILE_BYTES, loadCaptionFiles, parseCocoResults, parseJsonText, parseReferences, readJsonFile } from './io.js';

const directory = mkdtempSync(join(tmpdir(), 's2cpnet-io-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = join(directory, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const annotations = {
  images: [{ id: 1 }, { id: 2 }],
  annotations: [
    { id: 10, image_id: 1, caption: 'A bridge over a river.' },
    { id: 11, image_id: 2, caption: 'Some ships in a port.' },
    { id: 12, image_id: 1, caption: 'a long bridge' },
  ],
};
const karpathy = {
  images: [
    { imgid: 0, filename: 'a.tif', split: 'test', sentences: [{ raw: 'A lake.', tokens: ['a', 'lake'] }] },
    { imgid: 1, filename: 'b.tif', split: 'train', sentences: [{ raw: 'A road.', tokens: ['a', 'road'] }] },
    { imgid: 2, filename: 'c.tif', split: 'test', sentences: [{ raw: 'Two ships.', tokens: ['two', 'ships'] }] },
  ],
};

describe('caption file loading', () => {
  it('pairs COCO results with COCO annotations in results order', () => {
    const items = loadCaptionFiles(
      write('r1.json', [
        { image_id: 2, caption: 'ships' },
        { image_id: 1, caption: '' },
      ]),
      write('a1.json', annotations),
    );
    expect(items).toEqual([
      { imageId: 2, candidate: 'ships', references: ['Some ships in a port.'] },
      { imageId: 1, candidate: '', references: ['A bridge over a river.', 'a long bridge'] },
    ]);
  });

  it('reads a Karpathy dataset.json split, by imgid or by filename, raw or tokens', () => {
    const references = write('k.json', karpathy);
    const byId = loadCaptionFiles(write('r2.json', [{ image_id: 0, caption: 'a' }, { image_id: 2, caption: 'b' }]), references, {
      split: 'test',
    });
    expect(byId.map((item) => item.references)).toEqual([['A lake.'], ['Two ships.']]);
    const byName = loadCaptionFiles(
      write('r3.json', [{ image_id: 'a.tif', caption: 'a' }, { image_id: 'c.tif', caption: 'b' }]),
      references,
      { split: 'test', pretokenized: true },
    );
    expect(byName.map((item) => item.references)).toEqual([['a lake'], ['two ships']]);
  });

  it('asks for --split on a Karpathy file and names the splits', () => {
    expect(() => parseReferences(karpathy, 'k.json')).toThrow(/k\.json: .*--split \(test, train\)/);
    expect(() => parseReferences(karpathy, 'k.json', { split: 'val' })).toThrow(/no image has split "val"/);
  });

  it('names the file, the id and the problem for mismatched ids, both ways', () => {
    const references = write('a2.json', annotations);
    const extra = write('r4.json', [
      { image_id: 1, caption: 'x' },
      { image_id: 2, caption: 'y' },
      { image_id: 99, caption: 'z' },
    ]);
    expect(() => loadCaptionFiles(extra, references)).toThrow(/r4\.json: image_id 99: has no references in .*a2\.json/);
    const missing = write('r5.json', [{ image_id: 1, caption: 'x' }]);
    expect(() => loadCaptionFiles(missing, references)).toThrow(/a2\.json: image_id 2: has references but no caption in .*r5\.json/);
  });

  it('rejects duplicates, non-string and empty captions, and bad ids', () => {
    expect(() => parseCocoResults([{ image_id: 1, caption: 'a' }, { image_id: 1, caption: 'b' }], 'r.json')).toThrow(
      /r\.json: image_id 1: the image has two captions \(entries \$\[0\] and \$\[1\]\)/,
    );
    expect(() => parseCocoResults([{ image_id: 1, caption: 3 }], 'r.json')).toThrow(/\$\[0\]\.caption: image_id 1: caption must be a string, found number 3/);
    expect(() => parseCocoResults([{ image_id: null, caption: 'a' }], 'r.json')).toThrow(/image_id must be a number or a non-empty string, found null/);
    expect(() => parseCocoResults({ annotations: [] }, 'r.json')).toThrow(/expected a COCO results array/);
    expect(() => parseReferences({ annotations: {} }, 'a.json')).toThrow(/a\.json: \$\.annotations: expected "annotations" to be an array, found an object/);
    expect(() => parseReferences([1, 2], 'a.json')).toThrow(/expected COCO caption annotations .* found an array/);
    expect(() =>
      parseReferences({ annotations: [{ image_id: 1, caption: '  ' }] }, 'a.json'),
    ).toThrow(/a\.json: \$\.annotations\[0\]\.caption: image_id 1: reference caption is empty/);
    expect(() =>
      parseReferences({ annotations: [{ id: 5, image_id: 1, caption: 'a' }, { id: 5, image_id: 2, caption: 'b' }] }, 'a.json'),
    ).toThrow(/annotation id 5 is used twice/);
  });

  it('refuses a file over maxBytes (default 64 MiB) before parsing it, naming the file, its size and the limit', () => {
    const results = write('r-size.json', [{ image_id: 1, caption: 'a bridge' }, { image_id: 2, caption: 'ships' }]);
    const references = write('a-size.json', annotations);
    const size = JSON.stringify([{ image_id: 1, caption: 'a bridge' }, { image_id: 2, caption: 'ships' }]).length;
    expect(() => loadCaptionFiles(results, references, { maxBytes: size - 1 })).toThrow(
      `${results}: the file is ${size} bytes (0.0 MiB), more than the limit of ${size - 1} bytes (0.0 MiB)`,
    );
    expect(() => loadCaptionFiles(results, references, { maxBytes: size })).toThrow(/a-size\.json: the file is \d+ bytes/);
    expect(loadCaptionFiles(results, references, { maxBytes: 10_000 })).toHaveLength(2);
    expect(() => readJsonFile(results, { maxBytes: 0 })).toThrow(/maxBytes must be a positive number/);
    expect(DEFAULT_MAX_CAPTION_FILE_BYTES).toBe(64 * 2 ** 20);
    // A sparse file one byte over the default: refused by its size, never read.
    const huge = join(directory, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, DEFAULT_MAX_CAPTION_FILE_BYTES + 1);
    expect(() => readJsonFile(huge)).toThrow(/huge\.json: the file is 67108865 bytes \(64\.0 MiB\), more than the limit of 67108864 bytes/);
    rmSync(huge);
  });

  it('reports malformed JSON with the file, line and column', () => {
    const file = write('broken.json', '[\n  {"image_id": 1, "caption": "a"},\n  {"image_id": 2 "caption": "b"}\n]');
    expect(() => loadCaptionFiles(file, write('a3.json', annotations))).toThrow(MetricsInputError);
    expect(() => loadCaptionFiles(file, write('a4.json', annotations))).toThrow(/broken\.json: malformed JSON at line 3, column \d+/);
    expect(() => parseJsonText('', 'empty.json')).toThrow(/empty\.json: malformed JSON/);
    expect(() => loadCaptionFiles(join(directory, 'absent.json'), file)).toThrow(/absent\.json: cannot read the file/);
  });
});
