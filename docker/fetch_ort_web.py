"""Put the onnxruntime-web files the web page loads into a folder, at the version package-lock.json pins.

    python3 fetch_ort_web.py package-lock.json service/ui.py OUT_DIR

Runs in the image's build stage. ``npm pack`` downloads only the onnxruntime-web tarball (no
dependencies, no install scripts, no onnxruntime-node); the tarball must match the lockfile's sha512
``integrity``. From its ``dist/`` we keep what the page needs and nothing else: the module the page
imports (``ORT_ENTRY`` in ``service/ui.py``), the WebAssembly loaders that module imports
(``ort-wasm-*.mjs``) and their ``.wasm`` binaries. The other builds (WebGPU/JSEP, JSPI, WebGL,
Node.js, source maps: ~75 MB more) stay out of the image. Standard library only.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "onnxruntime-web"
LOADER = re.compile(rb"ort-wasm-[A-Za-z0-9.-]*?\.mjs")


def pinned(lockfile: Path) -> tuple[str, str]:
    """(version, base64 sha512 digest) of onnxruntime-web in an npm v3 lockfile."""
    entry = json.loads(lockfile.read_text())["packages"][f"node_modules/{PACKAGE}"]
    algorithm, _, digest = entry["integrity"].partition("-")
    if algorithm != "sha512":
        raise SystemExit(f"{lockfile}: expected a sha512 integrity for {PACKAGE}, got {algorithm}")
    return entry["version"], digest


def page_entry(ui_module: Path) -> str:
    """The value of the module-level constant ``ORT_ENTRY`` in service/ui.py (read, not imported)."""
    for node in ast.parse(ui_module.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ORT_ENTRY" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise SystemExit(f"{ui_module}: no ORT_ENTRY = '<file>' constant")


def needed(dist: dict[str, bytes], entry: str) -> list[str]:
    """The entry module, every loader it names, and each loader's .wasm binary."""
    if entry not in dist:
        raise SystemExit(f"{PACKAGE} has no dist/{entry} (ORT_ENTRY); it has {sorted(dist)}")
    loaders = sorted({m.decode() for m in LOADER.findall(dist[entry]) if m.decode() in dist})
    if not loaders:
        raise SystemExit(f"dist/{entry} names no ort-wasm-*.mjs loader that the package ships")
    binaries = [name.removesuffix(".mjs") + ".wasm" for name in loaders]
    missing = [b for b in binaries if b not in dist]
    if missing:
        raise SystemExit(f"{PACKAGE} lacks {missing}")
    return [entry, *loaders, *binaries]


def main(lockfile: str, ui_module: str, out: str) -> None:
    version, digest = pinned(Path(lockfile))
    entry = page_entry(Path(ui_module))
    with tempfile.TemporaryDirectory() as tmp:
        npm_pack = ["npm", "pack", f"{PACKAGE}@{version}", "--silent"]
        subprocess.run(npm_pack, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tarball = Path(tmp) / f"{PACKAGE}-{version}.tgz"
        actual = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if actual != digest:
            raise SystemExit(f"{tarball.name}: sha512 {actual} does not match package-lock.json ({digest})")
        with tarfile.open(tarball) as tar:
            dist = {
                m.name.removeprefix("package/dist/"): m
                for m in tar.getmembers()
                if m.isfile() and m.name.startswith("package/dist/") and "/" not in m.name.removeprefix("package/dist/")
            }
            # Only text modules are read to follow imports; the .wasm binaries are copied as they are.
            texts = {name: b"" if name.endswith(".wasm") else _read(tar, m) for name, m in dist.items()}
            keep = needed(texts, entry)
            target = Path(out)
            target.mkdir(parents=True, exist_ok=True)
            for name in keep:
                (target / name).write_bytes(_read(tar, dist[name]))
    size = sum((target / name).stat().st_size for name in keep)
    print(f"{PACKAGE} {version}: {', '.join(keep)} ({size / 1e6:.1f} MB) in {target}")


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    assert source is not None
    with source:
        return source.read()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
