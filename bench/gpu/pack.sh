#!/usr/bin/env bash
# Builds .gpu-pack/: everything `bench/gpu/run.sh` needs on a GPU machine that has no internet and no Node, within
# the device's 64 MiB transfer limit (working tree + carried paths together). See bench/gpu/README.md.
#
#   bash bench/gpu/pack.sh [--build] [--out DIR] [--no-smoke]
#
#   --build     run `npx nx run-many -t build --projects=tag:publish` first and bundle packages/cli/dist/bin.js;
#               default: bundle the TypeScript sources directly (esbuild, the `@s2cpnet/source` export condition),
#               which writes nothing into packages/*/dist
#   --out DIR   where the pack goes (default .gpu-pack in the repository root; gitignored)
#   --no-smoke  skip the isolated smoke test of the bundle (`--version`, `bench --list`)
#
# Contents of the pack:
#   node.xz        this machine's Node binary (>= 20), stripped, xz
#   app.tar.xz     app/cli/dist/bin.mjs (one esbuild bundle of the s2cpnet CLI, all JavaScript dependencies inlined
#                  except @tensorflow/*, webgpu and onnxruntime-node), app/cli/wasm-threads.cjs, and app/node_modules
#                  with the packages the bundle loads at run time: @tensorflow/tfjs-{core,layers,backend-cpu,
#                  backend-wasm,backend-webgpu} (package.json + the Node entry file + wasm binaries), seedrandom, and
#                  webgpu (index.js + dist/linux-x64/dawn.node, stripped)
#   debs/*.deb     Debian 12's Vulkan loader and GL vendor-neutral dispatch libraries (unpacked on the device only if
#                  it has no libvulkan.so.1), plus libX11 and its dependencies for libGLX
#   manifest.json  sizes, sha256, versions, git commit, and the size budget
#
# Sources: node_modules of the repository; a package missing there (webgpu, @tensorflow/tfjs-backend-webgpu before
# they are installed) is taken from $GPU_PACK_EXTRA_MODULES (default /tmp/wg/node_modules). Node: $GPU_PACK_NODE
# (default: `command -v node`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUTDIR="$ROOT/.gpu-pack"
BUILD=0
SMOKE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=1 ;;
    --out) OUTDIR=$(realpath -m "$2"); shift ;;
    --no-smoke) SMOKE=0 ;;
    -h|--help) sed -n 2,26p "$0"; exit 0 ;;
    *) echo "pack.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

LIMIT=$((64 * 1024 * 1024))        # the device's limit: working tree + carried paths
MARGIN=$((2 * 1024 * 1024))        # kept free for files added to the tree before the run
EXTRA_MODULES=${GPU_PACK_EXTRA_MODULES:-/tmp/wg/node_modules}
NODE_BIN=${GPU_PACK_NODE:-$(command -v node)}
ESBUILD="$ROOT/node_modules/.bin/esbuild"
TF_PACKAGES=(tfjs-core tfjs-layers tfjs-backend-cpu tfjs-backend-wasm tfjs-backend-webgpu)

say() { echo "pack: $*" >&2; }
die() { echo "pack: ERROR: $*" >&2; exit 1; }

for tool in xz strip sha256sum apt-get tar; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[ -x "$ESBUILD" ] || die "no $ESBUILD (npm ci first)"
[ -x "$NODE_BIN" ] || die "no node binary ($NODE_BIN)"
NODE_VERSION=$("$NODE_BIN" --version)
case "$NODE_VERSION" in v2[0-9].*|v[3-9][0-9].*) ;; *) die "node $NODE_VERSION: the CLI needs Node >= 20" ;; esac

# The folder of an installed package: the repository's node_modules first, then the extra folder.
pkgdir() {
  local name=$1
  for base in "$ROOT/node_modules" "$EXTRA_MODULES"; do
    if [ -f "$base/$name/package.json" ]; then echo "$base/$name"; return 0; fi
  done
  die "package $name is not installed (looked in $ROOT/node_modules and $EXTRA_MODULES)"
}
pkgver() { "$NODE_BIN" -p "require('$1/package.json').version"; }
pkgmain() { "$NODE_BIN" -p "require('$1/package.json').main"; }

STAGE=$(mktemp -d /tmp/s2cpnet-gpu-pack.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
APP="$STAGE/app"
mkdir -p "$APP/cli/dist" "$APP/node_modules/@tensorflow" "$STAGE/pack/debs"

# ---- 1. the bundle ------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  say "building the publishable packages (nx)"
  npx nx run-many -t build --projects=tag:publish >&2
  ENTRY=packages/cli/dist/bin.js
  CONDITIONS=()
else
  ENTRY=packages/cli/src/bin.ts
  CONDITIONS=(--conditions=@s2cpnet/source)
fi
say "bundling $ENTRY with esbuild $("$ESBUILD" --version)"
# `require` for the CommonJS dependencies inlined into the ES module bundle.
BANNER='import { createRequire as __s2cpnetCreateRequire } from "node:module"; const require = __s2cpnetCreateRequire(import.meta.url);'
"$ESBUILD" "$ENTRY" --bundle --platform=node --format=esm --target=node20 "${CONDITIONS[@]}" \
  --external:@tensorflow/* --external:webgpu --external:onnxruntime-node --external:onnxruntime-common \
  --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="$BANNER" --legal-comments=none --log-level=warning \
  --metafile="$STAGE/meta.json" --outfile="$APP/cli/dist/bin.mjs"
# relaunch.ts finds the wasm-threads preload at <bundle dir>/../wasm-threads.cjs, as in the package.
cp packages/cli/wasm-threads.cjs "$APP/cli/wasm-threads.cjs"
printf '{"name":"@s2cpnet/cli-gpu-pack","private":true,"type":"module"}\n' > "$APP/cli/package.json"
EXTERNALS=$("$NODE_BIN" -e '
  const m = require(process.argv[1]);
  const ext = new Set();
  for (const o of Object.values(m.outputs)) for (const i of o.imports) if (i.external && !/^(node:)?[a-z_]+(\/[a-z_]+)?$/.test(i.path)) ext.add(i.path);
  console.log([...ext].sort().join(" "));' "$STAGE/meta.json")
say "bundle: $(du -h "$APP/cli/dist/bin.mjs" | cut -f1); non-builtin imports left to run time: $EXTERNALS"

# ---- 2. the packages the bundle loads at run time -----------------------------------------------------------------
TF_VERSIONS=()
for p in "${TF_PACKAGES[@]}"; do
  src=$(pkgdir "@tensorflow/$p")
  ver=$(pkgver "$src")
  [ "$ver" = 4.22.0 ] || die "@tensorflow/$p is $ver, expected 4.22.0 (one tfjs version per process)"
  main=$(pkgmain "$src")
  dst="$APP/node_modules/@tensorflow/$p"
  mkdir -p "$dst/$(dirname "$main")"
  cp "$src/package.json" "$dst/"
  cp "$src/$main" "$dst/$main"
  if [ "$p" = tfjs-backend-wasm ]; then cp "$src"/dist/*.wasm "$dst/dist/"; fi  # located through __dirname
  TF_VERSIONS+=("\"@tensorflow/$p\": \"$ver\"")
done
SEED=$(pkgdir seedrandom)
mkdir -p "$APP/node_modules/seedrandom"
cp -r "$SEED/package.json" "$SEED/index.js" "$SEED/seedrandom.js" "$SEED/lib" "$APP/node_modules/seedrandom/"
WG=$(pkgdir webgpu)
WG_VERSION=$(pkgver "$WG")
mkdir -p "$APP/node_modules/webgpu/dist/linux-x64"
cp "$WG/package.json" "$WG/index.js" "$APP/node_modules/webgpu/"
[ -f "$WG/LICENSE.md" ] && cp "$WG/LICENSE.md" "$APP/node_modules/webgpu/"
# Symbols are not needed at run time (the N-API entry points are in the dynamic symbol table): 21.5 -> 17.5 MB.
strip -o "$APP/node_modules/webgpu/dist/linux-x64/dawn.node" "$WG/dist/linux-x64/dawn.node"
say "webgpu $WG_VERSION from $WG; tfjs 4.22.0 from $(dirname "$(pkgdir @tensorflow/tfjs-core)")"

# ---- 3. smoke test, isolated from the repository's node_modules ---------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  say "smoke test of the bundle in $STAGE (outside the repository)"
  v=$(cd /tmp && S2CPNET_THREADS=1 "$NODE_BIN" "$APP/cli/dist/bin.mjs" --version) || die "bundle: --version failed"
  n=$(cd /tmp && S2CPNET_THREADS=1 "$NODE_BIN" "$APP/cli/dist/bin.mjs" bench --list | wc -l) || die "bundle: bench --list failed"
  [ "$n" -gt 5 ] || die "bundle: bench --list printed $n lines"
  (cd /tmp && "$NODE_BIN" --input-type=module -e "const m = await import('$APP/node_modules/webgpu/index.js'); if (typeof m.create !== 'function') process.exit(1);") \
    || die "bundle: the packed webgpu/dawn.node does not load"
  say "smoke: s2cpnet $v, $n workloads listed, dawn.node loads"
fi

# ---- 4. the pack --------------------------------------------------------------------------------------------------
say "compressing app/ (xz -9)"
tar -C "$STAGE" --owner=0 --group=0 --sort=name -cf - app | xz -9 -T2 > "$STAGE/pack/app.tar.xz"

# Node: stripped (86 MB of 99) and xz'd; reused from the last pack when built from the same binary.
NODE_SHA=$(sha256sum "$NODE_BIN" | cut -d' ' -f1)
if [ -f "$OUTDIR/node.xz" ] && [ -f "$OUTDIR/manifest.json" ] \
   && [ "$("$NODE_BIN" -p "require('$OUTDIR/manifest.json').node.sourceSha256" 2>/dev/null)" = "$NODE_SHA" ]; then
  say "node: reusing $OUTDIR/node.xz (same source binary)"
  cp "$OUTDIR/node.xz" "$STAGE/pack/node.xz"
else
  say "node: strip + xz -9 of $NODE_BIN ($NODE_VERSION), about a minute"
  strip -o "$STAGE/node" "$NODE_BIN"
  "$STAGE/node" -e 'process.exit(0)' || die "stripped node does not run"
  xz -9 -T2 -c "$STAGE/node" > "$STAGE/pack/node.xz"
fi

# Debian 12's loaders (apt-get download needs no root and installs nothing).
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libxext6)
say "apt-get download ${DEBS[*]}"
(cd "$STAGE/pack/debs" && apt-get download "${DEBS[@]}" >/dev/null 2>"$STAGE/apt.err") \
  || { cat "$STAGE/apt.err" >&2; die "apt-get download failed"; }
# Plain names: letters, digits, '.', '_', '-' (apt writes epochs as %3a; versions may hold '+').
for f in "$STAGE"/pack/debs/*.deb; do
  b=$(basename "$f"); c=$(echo "${b//%3a/_}" | tr -c 'A-Za-z0-9._\n-' '_')
  if [ "$b" != "$c" ]; then mv "$f" "$STAGE/pack/debs/$c"; fi
done

# ---- 5. manifest and the size budget ------------------------------------------------------------------------------
TREE_BYTES=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
COMMIT=$(git rev-parse HEAD)
DIRTY=$(git status --porcelain | wc -l)
"$NODE_BIN" - "$STAGE/pack" "$STAGE/meta.json" <<EOF > "$STAGE/manifest.json"
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const [dir, metaFile] = process.argv.slice(2);
const files = {};
const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const f = path.join(d, e.name); if (e.isDirectory()) walk(f); else files[path.relative(dir, f)] = { bytes: fs.statSync(f).size, sha256: crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex') }; } };
walk(dir);
const packBytes = Object.values(files).reduce((s, f) => s + f.bytes, 0);
const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
const byPackage = {};
for (const [f, v] of Object.entries(meta.inputs)) {
  const i = f.lastIndexOf('node_modules/');
  const rest = i >= 0 ? f.slice(i + 13).split('/') : f.split('/');
  const key = i >= 0 ? rest.slice(0, rest[0].startsWith('@') ? 2 : 1).join('/') : rest.slice(0, 2).join('/');
  byPackage[key] = (byPackage[key] || 0) + v.bytes;
}
const top = Object.fromEntries(Object.entries(byPackage).sort((a, b) => b[1] - a[1]).slice(0, 12));
console.log(JSON.stringify({
  builtAt: new Date().toISOString(),
  git: { commit: '$COMMIT', uncommittedPaths: $DIRTY },
  entry: '$ENTRY',
  node: { version: '$NODE_VERSION', source: '$NODE_BIN', sourceSha256: '$NODE_SHA', stripped: true },
  webgpu: '$WG_VERSION',
  tensorflow: { ${TF_VERSIONS[*]/%/,} },
  esbuild: '$("$ESBUILD" --version)',
  bundleInputsBytesTop: top,
  debs: fs.readdirSync(path.join(dir, 'debs')).sort(),
  budget: { limitBytes: $LIMIT, workingTreeBytes: $TREE_BYTES, packBytes: packBytes + 4096, totalBytes: $TREE_BYTES + packBytes + 4096 },
  files,
}, null, 2));
EOF
PACK_BYTES=$(du -sb "$STAGE/pack" | cut -f1)
PACK_BYTES=$((PACK_BYTES + $(stat -c %s "$STAGE/manifest.json")))
TOTAL=$((PACK_BYTES + TREE_BYTES))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "sizes: node.xz $(mib "$(stat -c %s "$STAGE/pack/node.xz")"), app.tar.xz $(mib "$(stat -c %s "$STAGE/pack/app.tar.xz")"), debs $(mib "$(du -sb "$STAGE/pack/debs" | cut -f1)")"
say "pack $(mib $PACK_BYTES) + working tree $(mib $TREE_BYTES) = $(mib $TOTAL) of the device's $(mib $LIMIT)"
if [ "$PACK_BYTES" -gt "$LIMIT" ]; then die "the pack alone is over 64 MiB"; fi
if [ "$TOTAL" -gt "$LIMIT" ]; then die "pack + working tree is over 64 MiB: the device would refuse the run"; fi
if [ "$TOTAL" -gt $((LIMIT - MARGIN)) ]; then say "WARNING: less than $(mib $MARGIN) left under the limit"; fi

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
cp -r "$STAGE/pack/." "$OUTDIR/"
cp "$STAGE/manifest.json" "$OUTDIR/manifest.json"
say "wrote $OUTDIR: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
say "run on the device: command 'bash bench/gpu/run.sh', carry ['.gpu-pack']"
