/**
 * The three-line snippet the root README and this package's README show first runs as written against the released
 * weights package (`weights/ucm-mobilenet`, installed in the workspace as `@s2cpnet/weights-ucm-mobilenet`), with
 * only the image path replaced by a generated PNG. Nothing in this file sets a backend: `loadCaptioner` must.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { benchmarkImage, encodePng } from '@s2cpnet/data';
import * as model from './index';

const repo = path.resolve(__dirname, '../../..');
const work = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-readme-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The first ```ts block of a README that calls loadCaptioner. */
function snippet(readme: string): string {
  const text = readFileSync(path.join(repo, readme), 'utf8');
  const block = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.includes('loadCaptioner('));
  if (!block) throw new Error(`${readme}: no ts code block calling loadCaptioner`);
  return block;
}

/** Runs a snippet whose only import is `import { ... } from '@s2cpnet/model'` (bound to this package's source). */
async function runSnippet(code: string): Promise<unknown[]> {
  const importLine = /^import \{([^}]+)\} from '@s2cpnet\/model';\n/;
  const match = importLine.exec(code);
  if (!match) throw new Error(`snippet does not start with an import from @s2cpnet/model:\n${code}`);
  const names = match[1]!.split(',').map((n) => n.trim());
  const logged: unknown[] = [];
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<void>;
  const body = code.replace(importLine, '');
  await new AsyncFunction(...names, 'console', body)(...names.map((n) => (model as Record<string, unknown>)[n]), { log: (...values: unknown[]) => logged.push(...values) });
  return logged;
}

describe('the README snippet', () => {
  const image = path.join(work, 'scene.png');
  writeFileSync(image, encodePng(benchmarkImage(256, 7)));

  for (const readme of ['README.md', 'packages/model/README.md']) {
    it(`of ${readme} captions an image with the released weights, setting a backend up itself`, async () => {
      const code = snippet(readme);
      expect(code).toContain("'scene.tif'");
      const logged = await runSnippet(code.replace("'scene.tif'", JSON.stringify(image)));
      expect(['tensorflow', 'wasm', 'cpu']).toContain(tf.getBackend());
      expect(logged).toHaveLength(1);
      const [result] = logged[0] as { file: string; caption: string; categories: { name: string; probability: number }[] }[];
      expect(result!.file).toBe(image);
      expect(result!.caption.split(' ').length).toBeGreaterThan(2);
      expect(Array.isArray(result!.categories)).toBe(true);
    });
  }
});
