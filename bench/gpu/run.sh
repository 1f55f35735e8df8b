#!/usr/bin/env bash
# The prepared GPU check (issue #15 item 3). On the GPU machine, from the repository root, with .gpu-pack carried:
#     bash bench/gpu/run.sh
# Here, without a GPU (Dawn on Mesa's software OpenGL ES, PyTorch on the CPU, smallest workload):
#     OUT=/tmp/gpuout bash bench/gpu/run.sh --local
#
# Unpacks .gpu-pack (made by bench/gpu/pack.sh) into $GPU_RUN_WORK (default /tmp/s2cpnet-gpu), sets up the Vulkan
# loader, probes Dawn for an adapter, runs the PyTorch twin (bench/pytorch/bench.py --device cuda) and then
# `s2cpnet --backend webgpu bench --json --only NAME` once per workload, each under `timeout`, and writes to $OUT:
#   run.log        everything printed
#   torch.json     bench.py's JSON
#   webgpu.json    the Dawn probes, the adapter, every tfjs result, and each failed workload with its reason
#   summary.json   the pairs, ratios and targets; summary.txt the same as a table (also printed at the end)
# It fails soft: without an adapter PyTorch still runs, and each failure is recorded with its reason.
#
# Options: --local; --only a,b,c (workload names of `s2cpnet bench --list`); --reps N; --warmup N;
#          --backend webgpu|wasm|cpu (tfjs backend; default webgpu); --budget SECONDS (default 480: the whole run
#          ends inside it); --pack DIR (default .gpu-pack); --no-torch; --no-tfjs
# Test knobs (for trying the GPU path on a machine without one): GPU_RUN_FORCE_PACKED_LOADER=1 uses the packed
# Vulkan loader even where the system has one; GPU_RUN_NO_ROOT_UNPACK=1 never unpacks the loader packages into /.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
MODE=gpu
ONLY=""
REPS=""
WARMUP=""
BACKEND=webgpu
BUDGET=480
PACK="$ROOT/.gpu-pack"
RUN_TORCH=1
RUN_TFJS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --local) MODE=local ;;
    --only) ONLY=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --backend) BACKEND=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --pack) PACK=$(cd "$2" && pwd); shift ;;
    --no-torch) RUN_TORCH=0 ;;
    --no-tfjs) RUN_TFJS=0 ;;
    -h|--help) sed -n 2,23p "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

OUT=${OUT:-$ROOT/.gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
TEE_PID=$!
WORK=${GPU_RUN_WORK:-/tmp/s2cpnet-gpu}
rm -rf "$WORK"
mkdir -p "$WORK/tfjs"
: > "$WORK/tfjs/status.tsv"
: > "$WORK/probe.jsonl"
ENV_FILE="$WORK/env.txt"
note() { echo "== [$(printf '%3d' "$SECONDS") s] $*"; }
setenv() { echo "$1=$2" >> "$ENV_FILE"; }
left() { echo $((BUDGET - SECONDS)); }
finish() {
  note "summary"
  python3 "$ROOT/bench/gpu/summarize.py" --work "$WORK" --out "$OUT" --torch "$OUT/torch.json" || echo "summarize.py failed (exit $?)"
  note "done in $SECONDS s; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  exec >&- 2>&-
  wait "$TEE_PID" 2>/dev/null
  exit 0
}

# Workloads: the issue's three (lite step, paper-preset caption samples/s, ResNet50 forward), then more if time is left.
if [ -z "$ONLY" ]; then
  if [ "$MODE" = local ]; then ONLY=mobilenet.forward.b1; else ONLY=resnet50.forward.b8,lite.train.b16x5,s2cpnet.train.b8x5,resnet50.forward.b1,caption.beam3.paper,resnet50.train.b8; fi
fi
if [ "$MODE" = local ]; then REPS=${REPS:-1}; WARMUP=${WARMUP:-1}; else REPS=${REPS:-3}; WARMUP=${WARMUP:-2}; fi
IFS=, read -r -a WORKLOADS <<< "$ONLY"
# Seconds one tfjs workload may take (shader compilation and the profiled warm-up included).
cap_for() {
  case "$1" in
    s2cpnet.train*|caption.*|resnet50.train*) echo 180 ;;
    *) echo 120 ;;
  esac
}

note "s2cpnet GPU check: mode $MODE, tfjs backend $BACKEND, workloads ${WORKLOADS[*]}, reps $REPS, warm-up $WARMUP, budget $BUDGET s"
setenv MODE "$MODE"
setenv BACKEND "$BACKEND"
setenv DATE "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
setenv OS "$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}") || echo '?')"
setenv GLIBC "$(ldd --version 2>/dev/null | head -1 | sed 's/.* //; s/^/glibc /')"
setenv KERNEL "$(uname -r)"
echo "os: $(grep PRETTY_NAME /etc/os-release 2>/dev/null); $(uname -srm); $(ldd --version 2>/dev/null | head -1); user $(id -un); $(nproc) cpus"
echo "repo: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git') ; python3 $(python3 --version 2>&1)"

# ---- GPU ------------------------------------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  note "nvidia-smi"
  timeout 30 nvidia-smi
  setenv GPU "$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | head -1)"
else
  echo "no nvidia-smi"
  setenv GPU "no nvidia-smi"
fi

# ---- unpack -----------------------------------------------------------------------------------------------------------
note "unpack $PACK -> $WORK"
NODE=""
if [ ! -f "$PACK/manifest.json" ]; then
  echo "no pack at $PACK (run bash bench/gpu/pack.sh here, and carry .gpu-pack)"
elif python3 "$ROOT/bench/gpu/unpack.py" pack "$PACK" "$WORK"; then
  NODE="$WORK/bin/node"
  setenv PACK_GIT "$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['git']['commit'][:10] + (' +%d uncommitted' % m['git']['uncommittedPaths'] if m['git']['uncommittedPaths'] else ''))" "$PACK/manifest.json")"
  setenv WEBGPU_VERSION "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['webgpu'])" "$PACK/manifest.json")"
else
  echo "unpack failed"
fi
if [ -n "$NODE" ] && ! "$NODE" --version >/dev/null 2>&1; then
  echo "the packed node does not run here: $("$NODE" --version 2>&1 | head -3)"
  NODE=""
fi
if [ -z "$NODE" ] && command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  NODE=$(command -v node)
  echo "using this machine's node instead"
fi
[ -n "$NODE" ] && setenv NODE_VERSION "$("$NODE" --version)"
APP="$WORK/app"
WEBGPU_JS="$APP/node_modules/webgpu/index.js"

# ---- Vulkan / EGL and the Dawn probe ----------------------------------------------------------------------------------
probe() {  # probe LABEL DAWN_BACKEND: one attempt, appended to probe.jsonl; success when it exits 0
  local label=$1 dawn=$2 line
  line=$(timeout -k 5 60 "$NODE" "$ROOT/bench/gpu/probe.mjs" --webgpu "$WEBGPU_JS" --dawn "$dawn" --label "$label" 2> "$WORK/probe-$label.err")
  local rc=$?
  [ -n "$line" ] || line="{\"label\":\"$label\",\"ok\":false,\"dawn\":\"$dawn\",\"reason\":\"probe exit $rc, no output\"}"
  echo "$line" >> "$WORK/probe.jsonl"
  echo "probe $label (dawn $dawn): $line"
  if [ -s "$WORK/probe-$label.err" ]; then echo "  stderr:"; tail -n 15 "$WORK/probe-$label.err" | sed 's/^/    /'; fi
  [ $rc -eq 0 ] || return 1
  # On the GPU machine a software rasteriser is no result: go on to the next way of finding the GPU.
  if [ "$MODE" = gpu ] && echo "$line" | grep -qiE 'llvmpipe|lavapipe|softpipe|swiftshader'; then
    echo "  (a software adapter: not accepted in gpu mode)"
    return 1
  fi
}
first_file() { for f in "$@"; do if [ -e "$f" ]; then echo "$f"; return 0; fi; done; return 1; }

DAWN_USED=none
if [ "$RUN_TFJS" = 1 ] && [ -n "$NODE" ] && [ "$BACKEND" = webgpu ]; then
  note "WebGPU setup"
  GL_LIB="$WORK/gl/usr/lib/x86_64-linux-gnu"
  if [ "$MODE" = local ]; then
    export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless}
    VULKAN_LOADER="not used (local: Mesa OpenGL ES)"
    if probe local-opengl opengl; then DAWN_USED=opengl; fi
  else
    echo "ldconfig: $(ldconfig -p 2>/dev/null | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia|libGLdispatch|libnvidia-glcore' | awk '{print $1}' | sort -u | tr '\n' ' ')"
    ls -d /usr/local/nvidia/* 2>/dev/null | tr '\n' ' '; echo
    # The driver's libraries, wherever the container put them.
    NV_GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
    [ -n "$NV_GLX" ] || NV_GLX=$(first_file /usr/local/nvidia/lib64/libGLX_nvidia.so.0 /usr/local/nvidia/lib/libGLX_nvidia.so.0 /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0)
    echo "libGLX_nvidia.so.0 (the Vulkan ICD's library): ${NV_GLX:-not found}"
    if [ -n "$NV_GLX" ]; then
      case ":${LD_LIBRARY_PATH:-}:" in *":$(dirname "$NV_GLX"):"*) ;; *) export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$NV_GLX")" ;; esac
    fi
    if [ -z "${GPU_RUN_FORCE_PACKED_LOADER:-}" ] && ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
      VULKAN_LOADER="the system's"
      # libGLX_nvidia needs libGLdispatch (glvnd); add the packed one after the system's libraries if missing.
      ldconfig -p | grep -q libGLdispatch.so.0 || export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$GL_LIB"
    else
      VULKAN_LOADER="packed (Debian 12 libvulkan1 1.3.239, private prefix)"
      export LD_LIBRARY_PATH="$GL_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    echo "Vulkan loader: $VULKAN_LOADER; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    [ -n "$NV_GLX" ] && ldd "$NV_GLX" 2>&1 | grep -E 'not found|GLdispatch|X11' | sed 's/^/  ldd libGLX_nvidia: /'
    ICD=$(first_file /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json)
    EGLV=$(first_file /usr/share/glvnd/egl_vendor.d/10_nvidia.json /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /etc/glvnd/egl_vendor.d/10_nvidia.json)
    echo "NVIDIA Vulkan ICD: ${ICD:-not found}; EGL vendor file: ${EGLV:-not found}"
    [ -n "$ICD" ] && sed 's/^/  /' "$ICD"

    if probe vulkan-default default; then
      DAWN_USED=vulkan
    elif [ -n "$ICD" ] && export VK_DRIVER_FILES="$ICD" VK_ICD_FILENAMES="$ICD" && probe vulkan-icd default; then
      DAWN_USED=vulkan
    elif [ "$(id -u)" = 0 ] && [ -z "${GPU_RUN_NO_ROOT_UNPACK:-}" ] && [[ "$VULKAN_LOADER" == packed* ]] && {
        # The device notes' way: the loader packages unpacked into /, then ldconfig.
        echo "unpacking the loader packages into / (as root) and running ldconfig"
        python3 "$ROOT/bench/gpu/unpack.py" debs / "$PACK"/debs/lib{vulkan1,egl1,glvnd0,opengl0,gl1,glx0,gles2}_*.deb && ldconfig
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH//$GL_LIB/}"
        VULKAN_LOADER="packed, unpacked into / (Debian 12 libvulkan1 1.3.239)"
        probe vulkan-root default; }; then
      DAWN_USED=vulkan
    else
      # Last resort: Dawn's OpenGL ES backend on NVIDIA's EGL (compatibility mode; slower kernels).
      [ -n "$EGLV" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$EGLV"
      export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless}
      if probe egl-opengles opengles; then DAWN_USED=opengles; elif probe egl-opengl opengl; then DAWN_USED=opengl; fi
    fi
    if [ "$DAWN_USED" = none ]; then
      note "no adapter: the Vulkan loader's own diagnostics"
      VK_LOADER_DEBUG=error,warn,driver timeout -k 5 60 "$NODE" "$ROOT/bench/gpu/probe.mjs" --webgpu "$WEBGPU_JS" --label loader-debug 2>&1 | tail -n 60
    fi
  fi
  setenv VULKAN_LOADER "$VULKAN_LOADER"
  # The CLI's setUpWebGpu reads S2CPNET_WEBGPU_DAWN; Dawn's own choice (Vulkan on Linux) needs no flag.
  case "$DAWN_USED" in opengl|opengles) export S2CPNET_WEBGPU_DAWN=$DAWN_USED ;; esac
  note "Dawn: ${DAWN_USED}"
fi
setenv DAWN_USED "$DAWN_USED"

# ---- PyTorch ------------------------------------------------------------------------------------------------------
if [ "$RUN_TORCH" = 1 ]; then
  TORCH_ONLY=$ONLY
  if [ "$MODE" = local ]; then DEVICE=cpu; else DEVICE=cuda; fi
  T=$(( $(left) - 60 )); [ $T -gt 240 ] && T=240
  note "PyTorch twin: bench.py --device $DEVICE --only $TORCH_ONLY (timeout $T s)"
  if [ $T -lt 20 ]; then
    setenv TORCH_NOTE "no time left"
  else
    PYTHONUNBUFFERED=1 timeout -k 10 $T python3 "$ROOT/bench/pytorch/bench.py" --json --device $DEVICE --only "$TORCH_ONLY" \
      --reps $((REPS > 5 ? REPS : 5)) --warmup "$WARMUP" > "$OUT/torch.json"
    rc=$?
    if [ $rc -ne 0 ]; then
      echo "bench.py exit $rc"
      setenv TORCH_NOTE "bench.py exit $rc$([ $rc = 124 ] && echo ' (timed out)')"
      [ -s "$OUT/torch.json" ] || rm -f "$OUT/torch.json"
    else
      python3 -c "import json,sys; [print(f\"  torch {r['name']}: {r['msPerUnit']} ms/{r['unit']}\" + (f\", {r['samplesPerSecond']} samples/s\" if 'samplesPerSecond' in r else '')) for r in json.load(open(sys.argv[1]))['results']]" "$OUT/torch.json"
    fi
  fi
fi

# ---- TensorFlow.js (the bundled s2cpnet CLI), one process per workload ---------------------------------------------
if [ "$RUN_TFJS" = 1 ]; then
  if [ -z "$NODE" ]; then
    for w in "${WORKLOADS[@]}"; do printf '%s\t%s\t%s\t%s\n' "$w" 127 0 "no runnable node (see the unpack step)" >> "$WORK/tfjs/status.tsv"; done
  else
    first=1
    for w in "${WORKLOADS[@]}"; do
      cap=$(cap_for "$w")
      if [ "$BACKEND" = webgpu ] && [ "$DAWN_USED" = none ] && [ $first = 0 ]; then
        printf '%s\t%s\t%s\t%s\n' "$w" 1 0 "skipped: Dawn found no adapter (the first workload records the CLI's own error)" >> "$WORK/tfjs/status.tsv"
        continue
      fi
      [ "$BACKEND" = webgpu ] && [ "$DAWN_USED" = none ] && cap=60
      avail=$(( $(left) - 25 ))
      if [ $avail -lt 30 ]; then
        printf '%s\t%s\t%s\t%s\n' "$w" 1 0 "skipped: no time left in the ${BUDGET} s budget" >> "$WORK/tfjs/status.tsv"
        continue
      fi
      [ $cap -gt $avail ] && cap=$avail
      note "tfjs $BACKEND: $w (timeout $cap s)"
      start=$SECONDS
      S2CPNET_THREADS=${S2CPNET_THREADS:-1} timeout -k 10 "$cap" "$NODE" "$APP/cli/dist/bin.mjs" --backend "$BACKEND" bench --json --only "$w" \
        --reps "$REPS" --heavy-reps "$(( REPS < 2 ? REPS : 2 ))" --warmup "$WARMUP" \
        > "$WORK/tfjs/$w.json" 2> >(tee "$WORK/tfjs/$w.err" >&2)
      rc=$?
      sleep 0.2  # let tee finish the .err file
      why=""
      if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="timed out (limit $cap s)"; fi
      printf '%s\t%s\t%s\t%s\n' "$w" "$rc" "$((SECONDS - start))" "$why" >> "$WORK/tfjs/status.tsv"
      echo "  exit $rc in $((SECONDS - start)) s"
      first=0
    done
  fi
fi

finish
