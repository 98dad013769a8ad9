"""Train the zstd dictionary the SQL store compresses resource JSON with.

It is trained on what the store really holds: the demo population (synthetic, seeded) and the
Synthea sample bundles of ``../shared/data`` loaded into a scratch SQLite store, then every
stored resource read back. Same inputs, same dictionary: run it again only to ship a new
dictionary (add the file to ``content.SHIPPED`` and a migration that stores it; old ones stay).

    .venv/bin/python scripts/train_content_dictionary.py --dict-id 1397424130 \\
        --out src/sokhoe/store/sql/dictionaries/resources-2.zdict
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import orjson
import zstandard

from sokhoe.access.guard import platform_repository
from sokhoe.bench.shared_data import shared_data
from sokhoe.demo.writer import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dict-id", type=int, required=True, help="32768 .. 2**31-1")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--samples", type=int, default=40000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        write_demo(demo, args.patients, 7, "bundles", progress=False)
        store = SqlStore(f"sqlite:///{tmp}/train.db")
        repo = platform_repository(store, "http://localhost/fhir", name="dictionary-training")
        folder = shared_data() / "synthea"
        synthea = sorted(folder.glob("*.json"), key=lambda p: "Information" not in p.name)
        report = load_paths(repo, [demo, *synthea], workers=1)
        # a Synthea bundle whose conditional reference is ambiguous is left out; the
        # dictionary only needs what loaded
        print(f"{report.resources} resources loaded, {len(report.errors)} files refused")
        docs = [orjson.dumps(r.content) for r in store.iter_all()]
        store.close()
    random.Random(7).shuffle(docs)  # noqa: S311 (a reproducible sample, not a secret)
    samples = docs[: args.samples]
    trained = zstandard.train_dictionary(
        args.size, samples, k=1024, d=8, dict_id=args.dict_id, threads=1
    )
    args.out.write_bytes(trained.as_bytes())
    held_out = docs[args.samples : args.samples + 5000] or docs[:5000]
    c = zstandard.ZstdCompressor(level=3, dict_data=trained, write_checksum=False)
    raw = sum(map(len, held_out))
    packed = sum(len(c.compress(x)) for x in held_out)
    print(
        f"{len(docs)} resources, dictionary {trained.dict_id()} ({len(trained.as_bytes())} bytes):"
        f" {raw / len(held_out):.0f} -> {packed / len(held_out):.0f} bytes per resource"
    )


if __name__ == "__main__":
    main()
