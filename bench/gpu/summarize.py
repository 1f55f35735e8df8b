#!/usr/bin/env python3
"""Merges what bench/gpu/run.sh collected into OUT/webgpu.json, OUT/summary.json and OUT/summary.txt: per workload
the tfjs (webgpu) and PyTorch times, the speed ratio tfjs/PyTorch, and the issue #15 targets. Standard library only.

    python3 bench/gpu/summarize.py --work WORKDIR --out OUTDIR [--torch OUTDIR/torch.json]

WORKDIR holds: env.txt (KEY=VALUE lines), probe.jsonl (one Dawn probe per line), tfjs/NAME.json (stdout of
`s2cpnet bench --json --only NAME`), tfjs/NAME.err (its stderr), tfjs/status.tsv (NAME, exit code, seconds, note).
"""
import argparse
import json
import os
import re
import sys

PAPER = "s2cpnet.train.b8x5"  # GPU-sized: the same 8 images x 5 captions in one pass as PyTorch
SOFTWARE = re.compile(r"llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b", re.I)
TARGET_PAPER_SPS = 10.0
TARGET_RATIO = 0.3


def load_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            rows = [r.rstrip() for r in f if r.strip()]
    except OSError:
        return ""
    return " | ".join(rows[-lines:])


def read_env(path):
    env = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    env[k] = v
    except OSError:
        pass
    return env


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--torch")
    a = ap.parse_args()
    env = read_env(os.path.join(a.work, "env.txt"))
    probes = []
    try:
        with open(os.path.join(a.work, "probe.jsonl")) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        probes.append(json.loads(line))
                    except ValueError:
                        probes.append({"ok": False, "reason": f"unreadable probe output: {line[:200]}"})
    except OSError:
        pass

    # ---- tfjs side: one process per workload ----------------------------------------------------------------
    tdir = os.path.join(a.work, "tfjs")
    status = []
    try:
        with open(os.path.join(tdir, "status.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    status.append({"name": parts[0], "exitCode": int(parts[1]), "seconds": int(parts[2]),
                                   "note": parts[3] if len(parts) > 3 else ""})
    except OSError:
        pass
    tfjs_results, failures, header = [], [], None
    for s in status:
        report = load_json(os.path.join(tdir, f"{s['name']}.json"))
        rows = [r for r in (report or {}).get("results", []) if r.get("name") == s["name"]]
        if s["exitCode"] == 0 and rows:
            header = header or {k: v for k, v in report.items() if k != "results"}
            tfjs_results.append({**rows[0], "wallSeconds": s["seconds"]})
        else:
            why = s["note"] or ("timed out" if s["exitCode"] in (124, 137) else f"exit {s['exitCode']}")
            failures.append({"name": s["name"], "exitCode": s["exitCode"], "seconds": s["seconds"], "reason": why,
                             "stderrTail": tail(os.path.join(tdir, f"{s['name']}.err"), 8)})
    webgpu = {
        "mode": env.get("MODE"),
        "backendAsked": env.get("BACKEND"),
        "dawn": env.get("DAWN_USED"),
        "vulkanLoader": env.get("VULKAN_LOADER"),
        "probes": probes,
        "adapter": next((p.get("adapter") for p in probes if p.get("ok")), None),
        "report": header,
        "results": tfjs_results,
        "failures": failures,
    }
    ad = webgpu["adapter"]
    webgpu["softwareAdapter"] = None if not ad else bool(ad.get("isFallbackAdapter")) or bool(SOFTWARE.search(
        " ".join(str(ad.get(k) or "") for k in ("vendor", "architecture", "device", "description"))))
    with open(os.path.join(a.out, "webgpu.json"), "w") as f:
        json.dump(webgpu, f, indent=2)

    # ---- PyTorch side ---------------------------------------------------------------------------------------------
    torch = load_json(a.torch) if a.torch else None
    torch_by = {r["name"]: r for r in (torch or {}).get("results", [])}

    rows, checks = [], []
    for s in status:
        name = s["name"]
        t = next((r for r in tfjs_results if r["name"] == name), None)
        twin = (t or {}).get("twin") or ("s2cpnet.train.b8x5" if name == PAPER else name)
        p = torch_by.get(twin)
        pk = torch_by.get(f"{twin}.kvcache")
        ratio = ratio_kv = None
        if t and p:
            if t.get("twin") or (t.get("samplesPerSecond") and p.get("samplesPerSecond")):
                ratio = t["samplesPerSecond"] / p["samplesPerSecond"] if p.get("samplesPerSecond") else None
            else:
                ratio = p["msPerUnit"] / t["msPerUnit"]
        if t and pk:
            ratio_kv = pk["msPerUnit"] / t["msPerUnit"]
        fail = next((x for x in failures if x["name"] == name), None)
        rows.append({
            "name": name, "torchName": twin if p else None, "unit": (t or p or {}).get("unit"),
            "tfjsMsPerUnit": (t or {}).get("msPerUnit"), "torchMsPerUnit": (p or {}).get("msPerUnit"),
            "torchKvMsPerUnit": (pk or {}).get("msPerUnit"),
            "tfjsSamplesPerSecond": (t or {}).get("samplesPerSecond"), "torchSamplesPerSecond": (p or {}).get("samplesPerSecond"),
            "tfjsGflops": (t or {}).get("gflops"),
            "ratio": ratio, "ratioVsKvCache": ratio_kv,
            "status": "ok" if t else (fail["reason"] if fail["reason"].startswith("skipped") else f"tfjs failed: {fail['reason']}") if fail else "tfjs not run",
        })
        # Targets (issue #15): paper preset >= 10 caption samples/s; >= 0.3x PyTorch CUDA on the same workloads
        # (captioning against PyTorch's K/V-cache search, which is what the tfjs workload does).
        if name == PAPER and t:
            checks.append((f"paper preset >= {TARGET_PAPER_SPS:g} caption samples/s", t.get("samplesPerSecond"),
                           (t.get("samplesPerSecond") or 0) >= TARGET_PAPER_SPS))
        r = ratio_kv if ratio_kv is not None else ratio
        if r is not None:
            checks.append((f"{name} >= {TARGET_RATIO:g}x PyTorch{' (K/V cache)' if ratio_kv is not None else ''}", r, r >= TARGET_RATIO))
    # PyTorch rows without a tfjs counterpart in this run (e.g. tfjs skipped for lack of time).
    summary = {"env": env, "torch": {k: v for k, v in (torch or {}).items() if k != "results"} if torch else None,
               "adapter": webgpu["adapter"], "softwareAdapter": webgpu["softwareAdapter"], "dawn": webgpu["dawn"], "rows": rows,
               "targets": [{"what": w, "value": v, "met": bool(m)} for w, v, m in checks],
               "webgpuFailures": failures}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    # ---- text ----------------------------------------------------------------------------------------------------
    L = []
    L.append(f"s2cpnet GPU check ({env.get('MODE', '?')} mode), {env.get('DATE', '')}")
    L.append(f"machine: {env.get('GPU', 'no nvidia-smi')}; {env.get('OS', '?')}; {env.get('GLIBC', '?')}; kernel {env.get('KERNEL', '?')}")
    L.append(f"pack: git {env.get('PACK_GIT', '?')}, node {env.get('NODE_VERSION', '?')}, webgpu {env.get('WEBGPU_VERSION', '?')}")
    ad = webgpu["adapter"]
    if ad:
        text = " ".join(str(ad.get(k) or "") for k in ("vendor", "architecture", "device", "description"))
        software = webgpu["softwareAdapter"]
        L.append(f"tfjs backend {env.get('BACKEND')}: Dawn {webgpu['dawn']} on {' '.join(text.split())}"
                 f"{' -- A SOFTWARE ADAPTER, NOT THE GPU' if software else ''}; Vulkan loader: {webgpu['vulkanLoader']}")
    elif env.get("BACKEND") != "webgpu":
        L.append(f"tfjs backend {env.get('BACKEND')}")
    else:
        last = probes[-1] if probes else {}
        L.append(f"tfjs backend {env.get('BACKEND')}: Dawn found NO adapter ({len(probes)} probes; last: "
                 f"{last.get('label', '')} {last.get('stage', '')}: {last.get('reason', 'no probe ran')})")
    if torch:
        L.append(f"pytorch {torch.get('version')} on {torch.get('gpu') or torch.get('device', 'cpu')}"
                 f"{', CUDA ' + str(torch.get('cuda')) + ', TF32 ' + json.dumps(torch.get('tf32')) if torch.get('cuda') else ''}")
    else:
        L.append(f"pytorch: no results ({env.get('TORCH_NOTE', 'not run')})")
    L.append("")
    head = ["workload", "unit", "tfjs ms", "torch ms", "torch kv ms", "tfjs smp/s", "torch smp/s", "tfjs/torch", "status"]
    table = [head]
    for r in rows:
        table.append([r["name"] + (f" ~ {r['torchName']}" if r["torchName"] and r["torchName"] != r["name"] else ""),
                      r["unit"] or "-", fmt(r["tfjsMsPerUnit"]), fmt(r["torchMsPerUnit"]), fmt(r["torchKvMsPerUnit"]),
                      fmt(r["tfjsSamplesPerSecond"], 2), fmt(r["torchSamplesPerSecond"], 2),
                      (fmt(r["ratio"], 3) + (f" (kv {fmt(r['ratioVsKvCache'], 3)})" if r["ratioVsKvCache"] is not None else "")) if r["ratio"] is not None else "-",
                      r["status"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        L.append("  ".join(c.ljust(widths[i]) if i in (0, 1, 8) else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip())
    L.append("ms per unit (median); smp/s: caption samples per second (training steps); tfjs/torch: speed ratio "
             "(>1: tfjs faster; the paper step compares caption samples/s, both sides 8 images x 5 captions in one pass)")
    L.append("")
    L.append("targets (issue #15 item 3)" + (": local mode, not meaningful here" if env.get("MODE") == "local" else ":"))
    if not checks:
        L.append("  none could be evaluated")
    for w, v, m in checks:
        L.append(f"  {'met ' if m else 'MISS'}  {w}: {fmt(v, 3)}")
    for x in failures:
        if not x["reason"].startswith("skipped"):
            L.append(f"tfjs {x['name']}: {x['reason']}, {x['seconds']} s; stderr: {x['stderrTail'][-600:]}")
    text = "\n".join(L) + "\n"
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
