#!/usr/bin/env python3
"""PyTorch counterpart of `s2cpnet bench`: the same workloads, timed the same way, for tfjs-vs-PyTorch ratios.

    python3 bench/pytorch/bench.py [--json] [--threads N] [--only SUBSTRING] [--reps R] [--warmup W] [--device cpu|cuda]
    python3 bench/pytorch/bench.py --check     # every workload once at batch 1: shapes + finite losses
    python3 bench/pytorch/bench.py --params    # parameter counts

Each workload: W warm-up runs, then R timed runs; the median is reported. Training reps are forward + backward
(+ clipped Adam step where stated); gradients are zeroed (set to None) between reps, outside the timed region.
Progress goes to stderr; `--json` prints exactly one JSON object on stdout.

`--device cuda` puts every model and input on the GPU, and the tensors s2cpnet_torch makes while it runs (attention
masks, beam state) too, and times each rep between two `torch.cuda.synchronize()` calls; its JSON adds `device`,
`gpu`, `cuda`, `cudnn`, the TF32 switches (PyTorch's defaults are kept) and each workload's `peakGpuMiB`.
`--device meta` runs the workloads on shapes alone: a check, without a GPU, that no tensor is left on the CPU.
The default, cpu, is unchanged.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                   help="run only workloads whose name contains one of these comma-separated strings "
                        "(as `s2cpnet bench --only`), e.g. --only resnet50,lite")
    p.add_argument("--reps", type=int, default=3, help="timed runs per workload (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per workload (default 1)")
    p.add_argument("--check", action="store_true", help="run every workload once at batch 1 and assert shapes")
    p.add_argument("--params", action="store_true", help="print parameter counts and exit")
    p.add_argument("--device", default="cpu",
                   help="cpu (default); cuda (or cuda:N): models and inputs on the GPU, reps timed between CUDA "
                        "synchronisations; meta: shapes only, a check of the device placement without a GPU")
    a = p.parse_args(argv)
    if a.threads < 1 or a.reps < 1 or a.warmup < 0:
        p.error("--threads and --reps must be >= 1, --warmup >= 0")
    a.only_list = [part.strip() for part in a.only.split(",") if part.strip()] if a.only else []
    if a.only is not None and not a.only_list:
        p.error(f"--only: expected workload names separated by commas, found {a.only!r}")
    return a


def selected_name(name: str) -> bool:
    """True when --only is absent or the workload name contains one of its comma-separated strings."""
    return not ARGS.only_list or any(part in name for part in ARGS.only_list)


ARGS = _parse_args()

# Thread counts for OpenMP and an OpenMP/pthreads OpenBLAS must be in the environment before torch loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)


def _openblas_coretype():
    """Debian's OpenBLAS 0.3.21 does not recognise this machine's CPU ("Intel(R) Xeon(R) Processor") and falls
    back to its generic 'Prescott' (SSE3) kernels: sgemm 2048^3 ran at ~31 GFLOP/s instead of ~145 with the
    AVX-512 kernels. Unless the user set OPENBLAS_CORETYPE, pick the kernel family from the CPU flags."""
    if os.environ.get("S2CP_BENCH_CORETYPE_AUTO") == "1":  # set by this script before a re-exec
        return os.environ.get("OPENBLAS_CORETYPE", "?") + " (set by bench.py from the CPU flags)"
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"] + " (from the environment)"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "auto (no /proc/cpuinfo)"
    if "avx512f" in flags and "avx512vl" in flags and "avx512bw" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif "avx2" in flags and "fma" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    else:
        return "auto"
    os.environ["S2CP_BENCH_CORETYPE_AUTO"] = "1"
    return os.environ["OPENBLAS_CORETYPE"] + " (set by bench.py from the CPU flags)"


OPENBLAS_CORETYPE_FROM_ENV = bool(os.environ.get("OPENBLAS_CORETYPE")) and os.environ.get("S2CP_BENCH_CORETYPE_AUTO") != "1"
OPENBLAS_CORETYPE = _openblas_coretype()

try:
    import torch
except ImportError:
    # The Debian packages (python3-torch) live in /usr/lib/python3/dist-packages, which only the system
    # interpreter sees; a pyenv/venv `python3` first on PATH does not. Re-run once under /usr/bin/python3.
    system = "/usr/bin/python3"
    if os.environ.get("S2CP_BENCH_REEXEC") != "1" and os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system):
        os.environ["S2CP_BENCH_REEXEC"] = "1"
        os.execv(system, [system] + sys.argv)
    raise

import torch.nn.functional as F  # noqa: E402

try:
    DEVICE = torch.device(ARGS.device)
except RuntimeError as error:
    print(f"bench.py: --device {ARGS.device}: {error}", file=sys.stderr)
    sys.exit(2)
CUDA = DEVICE.type == "cuda"
if CUDA and not torch.cuda.is_available():
    print(f"bench.py: --device {ARGS.device}, but torch {torch.__version__} sees no CUDA device", file=sys.stderr)
    sys.exit(3)
ON = {"device": DEVICE}  # for the tensors this script makes


def tf32_state():
    """PyTorch's TF32 switches (left at their defaults: matmul off, cuDNN convolutions on), as read."""
    state = {}
    for key, read in (("matmul", lambda: torch.backends.cuda.matmul.allow_tf32), ("cudnn", lambda: torch.backends.cudnn.allow_tf32)):
        try:
            state[key] = bool(read())
        except Exception as error:  # newer PyTorch may deprecate these flags
            state[key] = f"unreadable: {error}"
    return state


def sync():
    """Waits for the GPU's queued work (a no-op on the CPU), so that a rep's time includes its kernels."""
    if CUDA:
        torch.cuda.synchronize()

sys.dont_write_bytecode = True  # keep bench/pytorch free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s2cpnet_torch as S  # noqa: E402

if DEVICE.type != "cpu":
    # s2cpnet_torch makes tensors without naming a device (attention masks, beam state, parameters): give it a
    # `torch` whose factory functions default to DEVICE. Unlike torch.set_default_device, this adds no Python hook
    # to every other torch call, and PyTorch's own code (the optimizer's step counters) stays as in any GPU program.
    import functools
    import types

    _torch_on_device = types.ModuleType("torch")
    _torch_on_device.__dict__.update(torch.__dict__)
    for _name in ("arange", "empty", "full", "ones", "rand", "randint", "randn", "tensor", "zeros"):
        setattr(_torch_on_device, _name, functools.partial(getattr(torch, _name), device=DEVICE))
    S.torch = _torch_on_device

VOCAB, CLASSES, T_LEN, CAPTIONS, BEAM, BEAM_STEPS = 274, 91, 20, 5, 3, 25


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def blas_library() -> str:
    """Which BLAS the process mapped (Debian's torch uses whatever libblas.so.3 the alternatives point to), as
    `folder/library` (e.g. `openblas-openmp/libblas.so.3`, or `blas/libblas.so.3` for the reference BLAS): enough to
    tell them apart, and no absolute path of the machine in the results."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    short = {os.path.join(os.path.basename(os.path.dirname(lib)), os.path.basename(lib)) for lib in libs}
    return ", ".join(sorted(short)) or "none mapped"


# ----------------------------------------------------------------------------------------------------------------
# Workloads. A builder takes (batch, check) and returns a Workload; `step()` runs one rep and returns the tensor
# that --check inspects (output, loss or decoded words).
# ----------------------------------------------------------------------------------------------------------------


class Workload:
    def __init__(self, step, prepare=None, expect_shape=None, is_loss=False, per_rep_units=1.0, samples=None):
        self.step = step
        self.prepare = prepare or (lambda: None)  # untimed, before every rep (zeroing gradients)
        self.expect_shape = expect_shape
        self.is_loss = is_loss
        self.per_rep_units = per_rep_units
        self.samples = samples


def _images(b):
    return torch.randn(b, 3, 224, 224, **ON)


def _zero(module):
    def prepare():
        for p in module.parameters():
            p.grad = None
    return prepare


def _trunk_forward(make, channels, b, check):
    net = make().to(DEVICE).eval()
    x = _images(b)

    def step():
        with torch.no_grad():
            return net(x)
    return Workload(step, expect_shape=(b, channels, 7, 7))


def _trunk_train(make, channels, b, check):
    net = make().to(DEVICE).train()
    x = _images(b)

    def step():
        feats = net(x)
        assert tuple(feats.shape) == (b, channels, 7, 7), feats.shape
        loss = (feats ** 2).mean()
        loss.backward()
        return loss.detach()
    return Workload(step, prepare=_zero(net), is_loss=True)


def _captions(images, captions=CAPTIONS, length=T_LEN):
    rows = images * captions
    tokens_in = torch.randint(4, VOCAB, (rows, length), **ON)
    tokens_in[:, 0] = S.START_ID
    tokens_out = torch.randint(0, VOCAB, (rows, length), **ON)  # random targets; the few 0s are <pad> and ignored
    return tokens_in, tokens_out


def cvff_train(b, check):
    net = S.CVFF(2048, 512, 512, 3, 8, 4, 0.1, 14).to(DEVICE).train()
    v1, v2 = torch.randn(b, 196, 2048, **ON), torch.randn(b, 196, 512, **ON)

    def step():
        memory = net(v1, v2)
        assert tuple(memory.shape) == (b, 196, 1024), memory.shape
        loss = (memory ** 2).mean()
        loss.backward()
        return loss.detach()
    return Workload(step, prepare=_zero(net), is_loss=True)


def decoder_train(b, check):
    net = S.GatedCaptionDecoder(VOCAB, 1024, 512, 3, 8, 2048, 0.1).to(DEVICE).train()
    memory = torch.randn(b, 196, 1024, **ON)
    tokens_in, tokens_out = _captions(b)

    def step():
        logits = net(memory, tokens_in, CAPTIONS)
        assert tuple(logits.shape) == (b * CAPTIONS, T_LEN, VOCAB), logits.shape
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens_out.reshape(-1), ignore_index=S.PAD_ID)
        loss.backward()
        return loss.detach()
    return Workload(step, prepare=_zero(net), is_loss=True)


def _full_train(model, images, masks, b):
    model.to(DEVICE).train()
    tokens_in, tokens_out = _captions(b)
    category_targets = (torch.rand(b, CLASSES, **ON) < 0.1).float()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)

    def step():
        loss = model.loss(images, masks, tokens_in, tokens_out, category_targets, CAPTIONS)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        return loss.detach()
    return Workload(step, prepare=lambda: optimizer.zero_grad(set_to_none=True), is_loss=True, samples=b * CAPTIONS)


def s2cpnet_train(b, check):
    return _full_train(S.s2cpnet_paper(VOCAB, CLASSES), _images(b), _images(b), b)


def lite_train(b, check):
    return _full_train(S.s2cpnet_lite_heads(VOCAB, CLASSES), torch.randn(b, 768, 7, 7, **ON), torch.randn(b, 768, 7, 7, **ON), b)


def _caption(search):
    def build(b, check):
        model = S.s2cpnet_paper(VOCAB, CLASSES).to(DEVICE).eval()
        images, masks = _images(b), _images(b)

        def step():
            with torch.no_grad():
                return search(model.decoder, model.encode(images, masks), BEAM, BEAM_STEPS)
        return Workload(step, expect_shape=(b, BEAM, BEAM_STEPS), per_rep_units=float(b))
    return build


# name -> (builder, batch, unit, units per rep (None: from the workload))
WORKLOADS = [
    ("resnet50.forward.b1", lambda b, c: _trunk_forward(S.resnet50_trunk, 2048, b, c), 1, "batch"),
    ("resnet50.forward.b8", lambda b, c: _trunk_forward(S.resnet50_trunk, 2048, b, c), 8, "batch"),
    ("resnet50.train.b8", lambda b, c: _trunk_train(S.resnet50_trunk, 2048, b, c), 8, "batch"),
    ("mobilenet.forward.b1", lambda b, c: _trunk_forward(lambda: S.MobileNetV1(0.75), 768, b, c), 1, "batch"),
    ("mobilenet.forward.b8", lambda b, c: _trunk_forward(lambda: S.MobileNetV1(0.75), 768, b, c), 8, "batch"),
    ("mobilenet.train.b8", lambda b, c: _trunk_train(lambda: S.MobileNetV1(0.75), 768, b, c), 8, "batch"),
    ("cvff.train.b8", cvff_train, 8, "batch"),
    ("decoder.train.b8x5", decoder_train, 8, "batch"),
    ("s2cpnet.train.b8x5", s2cpnet_train, 8, "step"),
    ("lite.train.b16x5", lite_train, 16, "step"),
    ("caption.beam3.paper", _caption(S.beam_search_no_cache), 8, "image"),
    ("caption.beam3.paper.kvcache", _caption(S.beam_search_kv_cache), 8, "image"),
]


def run_workload(name, builder, batch, unit, reps, warmup):
    torch.manual_seed(0)
    w = builder(batch, False)
    times = []
    if CUDA:
        sync()
        torch.cuda.reset_peak_memory_stats()
    for r in range(warmup + reps):
        w.prepare()
        sync()
        t0 = time.perf_counter()
        w.step()
        sync()
        ms = (time.perf_counter() - t0) * 1000.0
        if r >= warmup:
            times.append(ms)
        log(f"  {name} {'warm-up' if r < warmup else 'rep'} {r - warmup + 1 if r >= warmup else r + 1}: {ms:.1f} ms")
    med = statistics.median(times)
    result = {"name": name, "ms": round(med, 3), "msPerUnit": round(med / w.per_rep_units, 3), "unit": unit, "reps": reps}
    if w.samples:
        result["samplesPerSecond"] = round(w.samples / (med / 1000.0), 3)
    if CUDA:
        result["peakGpuMiB"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    del w
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
    return result


def check():
    """Every workload once at batch 1 (captions 1x5, beam search on one image): shapes and finite losses."""
    t_all = time.perf_counter()
    for name, builder, _batch, _unit in WORKLOADS:
        if not selected_name(name):
            continue
        torch.manual_seed(0)
        t0 = time.perf_counter()
        w = builder(1, True)
        w.prepare()
        out = w.step()
        if w.expect_shape is not None:
            assert tuple(out.shape) == w.expect_shape, f"{name}: shape {tuple(out.shape)} != {w.expect_shape}"
        if w.is_loss:
            assert out.dim() == 0 and torch.isfinite(out).item(), f"{name}: loss {out}"
        else:
            assert out.dtype == torch.long or torch.isfinite(out).all().item(), f"{name}: non-finite output"
        if name.startswith("caption."):
            assert not (out == S.END_ID).any().item(), f"{name}: <end> was emitted"
        what = f"loss {out.item():.4f}" if w.is_loss else f"shape {list(out.shape)}"
        log(f"ok  {name:30s} {what}  ({time.perf_counter() - t0:.1f} s)")
        del w, out
        gc.collect()
    # The cached and uncached searches must agree (eval mode, same weights).
    torch.manual_seed(0)
    dec = S.GatedCaptionDecoder(VOCAB, 1024, 512, 3, 8, 2048, 0.1).to(DEVICE).eval()
    memory = torch.randn(2, 196, 1024, **ON)
    with torch.no_grad():
        a = S.beam_search_no_cache(dec, memory, BEAM, 8)
        b = S.beam_search_kv_cache(dec, memory, BEAM, 8)
    assert torch.equal(a, b), f"beam search with and without cache disagree:\n{a}\n{b}"
    log("ok  beam search: kv-cache result == no-cache result")
    log(f"check passed in {time.perf_counter() - t_all:.1f} s")


def params():
    rows = [
        ("resnet50 trunk", S.resnet50_trunk()),
        ("mobilenet trunk (v1, 0.75)", S.MobileNetV1(0.75)),
        ("cvff paper size (2048/512 -> d 512, 3 units)", S.CVFF(2048, 512, 512, 3, 8, 4, 0.1, 14)),
        ("decoder paper size (3 layers, d 512, V 274)", S.GatedCaptionDecoder(VOCAB, 1024, 512, 3, 8, 2048, 0.1)),
        ("s2cpnet paper preset (full)", S.s2cpnet_paper(VOCAB, CLASSES)),
        ("lite heads (no backbone)", S.s2cpnet_lite_heads(VOCAB, CLASSES)),
    ]
    full = rows[4][1]
    parts = [
        ("  of which semantic enhancer", full.semantic),
        ("  of which spatial enhancer", full.spatial),
        ("  of which category head", full.category),
    ]
    print(f"{'model':48s} {'parameters':>12s} {'trainable':>12s}")
    for label, m in rows + parts:
        print(f"{label:48s} {S.count_params(m):>12,d} {S.count_params(m, True):>12,d}")


def main():
    torch.set_num_threads(ARGS.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, python {sys.executable}")
    if CUDA:
        log(f"device {DEVICE}: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
            f"TF32 {tf32_state()}")
    log(f"BLAS: {blas_library()}; OPENBLAS_CORETYPE {OPENBLAS_CORETYPE}")
    if "blas/libblas" in blas_library():
        log("WARNING: reference (netlib) BLAS is in use; Linear/matmul will be very slow. "
            "Install libopenblas0-openmp (apt) so that libblas.so.3 points to OpenBLAS.")
    if ARGS.params:
        params()
        return
    if ARGS.check:
        check()
        return
    selected = [w for w in WORKLOADS if selected_name(w[0])]
    if not selected:
        log(f"no workload matches --only {ARGS.only!r}")
        sys.exit(2)
    results = []
    for name, builder, batch, unit in selected:
        log(f"{name}: warm-up {ARGS.warmup}, reps {ARGS.reps}")
        results.append(run_workload(name, builder, batch, unit, ARGS.reps, ARGS.warmup))
    if ARGS.json:
        report = {
            "backend": "pytorch",
            "version": torch.__version__,
            "threads": ARGS.threads,
            # What the numbers depend on: the BLAS the process mapped, and the OpenBLAS kernel family with where it
            # came from (the user's environment, or bench.py from the CPU flags because it was unset).
            "blas": blas_library(),
            "openblasCoretype": OPENBLAS_CORETYPE,
            "openblasCoretypeWasUnset": not OPENBLAS_CORETYPE_FROM_ENV,
            "results": results,
        }
        if CUDA:
            report.update({
                "device": "cuda",
                "gpu": torch.cuda.get_device_name(),
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "tf32": tf32_state(),
            })
        print(json.dumps(report))
        return
    where = f", {torch.cuda.get_device_name()}" if CUDA else ""
    print(f"pytorch {torch.__version__}, {ARGS.threads} thread(s){where}, median of {ARGS.reps} (warm-up {ARGS.warmup})")
    print(f"{'workload':30s} {'ms':>11s} {'ms/unit':>11s}  {'unit':6s} {'samples/s':>10s}")
    for r in results:
        sps = f"{r['samplesPerSecond']:10.2f}" if "samplesPerSecond" in r else ""
        print(f"{r['name']:30s} {r['ms']:11.1f} {r['msPerUnit']:11.1f}  {r['unit']:6s} {sps}")


if __name__ == "__main__":
    main()
