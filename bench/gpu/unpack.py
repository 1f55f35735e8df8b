#!/usr/bin/env python3
"""Unpacks what bench/gpu/pack.sh made, with the Python standard library alone (the GPU machine may have no xz,
dpkg or node). Used by bench/gpu/run.sh.

    python3 bench/gpu/unpack.py pack PACKDIR DEST   # verify sha256s; DEST/app, DEST/bin/node, DEST/gl (debs)
    python3 bench/gpu/unpack.py debs ROOT DEB...    # extract .deb data (files and links) under ROOT, e.g. /
"""
import hashlib
import io
import json
import lzma
import os
import shutil
import sys
import tarfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_members(tar, root):
    """Files, directories and symbolic links of a tar under root; nothing else, nothing outside root."""
    root = os.path.abspath(root)
    count = 0
    for m in tar.getmembers():
        name = os.path.normpath(m.name.lstrip("./") or ".")
        if name == "." or name.startswith(".."):
            continue
        target = os.path.join(root, name)
        if m.isdir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if m.issym():
            if os.path.lexists(target):
                os.remove(target)
            os.symlink(m.linkname, target)
        elif m.isfile():
            if os.path.lexists(target):
                os.remove(target)
            with tar.extractfile(m) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(target, m.mode & 0o777)
        else:
            continue
        count += 1
    return count


def deb_data(path):
    """The data.tar member of a .deb (an `ar` archive) as an open tarfile."""
    with open(path, "rb") as f:
        blob = f.read()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{path}: not a .deb")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        data = blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise ValueError(f"{path}: zstd-compressed data (no zstd in Python's standard library)")
            return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    raise ValueError(f"{path}: no data.tar member")


def unpack_debs(root, debs):
    for deb in debs:
        with deb_data(deb) as tar:
            n = extract_members(tar, root)
        print(f"unpack: {os.path.basename(deb)}: {n} entries under {root}", file=sys.stderr)


def unpack_pack(pack, dest):
    with open(os.path.join(pack, "manifest.json")) as f:
        manifest = json.load(f)
    bad = []
    for rel, meta in manifest["files"].items():
        path = os.path.join(pack, rel)
        if not os.path.exists(path):
            bad.append(f"{rel}: missing")
        elif os.path.getsize(path) != meta["bytes"] or sha256(path) != meta["sha256"]:
            bad.append(f"{rel}: size or sha256 differs from the manifest")
    if bad:
        print("unpack: ERROR: " + "; ".join(bad), file=sys.stderr)
        return 1
    print(f"unpack: {len(manifest['files'])} files match the manifest (git {manifest['git']['commit'][:10]}, "
          f"built {manifest['builtAt']}, node {manifest['node']['version']}, webgpu {manifest['webgpu']})", file=sys.stderr)
    os.makedirs(os.path.join(dest, "bin"), exist_ok=True)
    with tarfile.open(os.path.join(pack, "app.tar.xz"), mode="r:xz") as tar:
        extract_members(tar, dest)
    node = os.path.join(dest, "bin", "node")
    with lzma.open(os.path.join(pack, "node.xz")) as src, open(node, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    os.chmod(node, 0o755)
    debs = sorted(os.path.join(pack, "debs", d) for d in os.listdir(os.path.join(pack, "debs")) if d.endswith(".deb"))
    unpack_debs(os.path.join(dest, "gl"), debs)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "pack":
        return unpack_pack(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "debs":
        unpack_debs(argv[1], argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
