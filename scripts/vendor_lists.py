"""Pack the MIT-licensed X4BNet lists into the package, for the default snapshot.

Reads ``anonymizers/x4bnet/*.txt`` under a data directory laid out like ``shared/data``, writes
them unchanged (with the MIT notice) into ``src/geowarden/intel/data/x4bnet.tar.xz`` and records
the data date, licence and attribution in ``src/geowarden/intel/data/vendored.json``. The default
build refuses the archive if that record has no licence or date.

Only permissively licensed lists may be packed (MIT, CC0, CC BY with attribution): never a
GPL list (``vpn-exits``, ``tor-exits``) inside this Apache-2.0 package.

Usage::

    python scripts/vendor_lists.py --data ../shared/data --date 2026-08-22
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import sys
import tarfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "src" / "geowarden" / "intel" / "data"
X4BNET_DIR = Path("anonymizers/x4bnet")

LICENCE_TEXT = """\
The files under anonymizers/x4bnet/ are copies of the lists published by the X4BNet/lists_vpn
project (https://github.com/X4BNet/lists_vpn), released under the MIT License:

Copyright (c) the X4BNet/lists_vpn contributors

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible archives
    tar.addfile(info, io.BytesIO(data))


def main() -> None:
    """Write the archive and its record."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--date", required=True, help="ISO date the lists describe (the upstream commit date)")
    args = ap.parse_args()
    date.fromisoformat(args.date)
    src = args.data / X4BNET_DIR
    files = sorted(p for p in src.glob("*.txt") if p.is_file())
    if not files:
        sys.exit(f"vendor_lists: no X4BNet lists under {src}")
    buf = io.BytesIO()
    with lzma.open(buf, "wb", preset=9 | lzma.PRESET_EXTREME) as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        _add(tar, f"{X4BNET_DIR.as_posix()}/LICENSE", LICENCE_TEXT.encode())
        for path in files:
            _add(tar, f"{X4BNET_DIR.as_posix()}/{path.name}", path.read_bytes())
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "x4bnet.tar.xz").write_bytes(buf.getvalue())
    record = {
        "x4bnet": {
            "file": "x4bnet.tar.xz",
            "date": args.date,
            "licence": "MIT",
            "attribution": "X4BNet/lists_vpn (MIT), https://github.com/X4BNet/lists_vpn",
            "url": "https://github.com/X4BNet/lists_vpn",
            "files": [p.name for p in files],
        }
    }
    (OUT_DIR / "vendored.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT_DIR / 'x4bnet.tar.xz'} ({len(buf.getvalue()):,} bytes, {len(files)} lists)")


if __name__ == "__main__":
    main()
