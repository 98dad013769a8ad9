"""``python -m sokhoe.interop.hl7v2.bench --messages N``: HL7 v2 over MLLP, end to end.

Starts a listener on a fresh SQLite file, then sends N messages on ``--connections`` MLLP
connections, each waiting for its ACK: half ADT^A04 registering distinct synthetic people
(with a visit), half ORU^R01 with three results for them. Reports messages per second and
the ACK latency percentiles. Every ACK must be ``AA``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from sokhoe.access.guard import platform_repository
from sokhoe.interop.hl7v2.mllp import AllowList, ListenerLimits, MllpClient, MllpServer
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store.sql import SqlStore

BASE = "http://127.0.0.1:8000/fhir"
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hạnh", "Khoa", "Linh", "Minh", "Nhung"]


def adt(i: int) -> bytes:
    return (
        f"MSH|^~\\&|HIS|79001|SOKHOE|SOKHOE|20250310081500+0700||ADT^A04^ADT_A01|B-A04-{i}|P|2.5"
        "|||||VNM|UNICODE UTF-8\r"
        f"PID|1||BN-{i:07d}^^^79001^MR||{FAMILY[i % 10]}^{GIVEN[i // 10 % 10]}^Văn||"
        f"{1950 + i % 60}0{1 + i % 9}1{i % 9}|{'MF'[i % 2]}|||{i} Lê Lợi^^Phường Bến Thành^"
        "Thành phố Hồ Chí Minh^^VNM^H\r"
        f"PV1|1|O|KHAM||||||||||||||||V-{i:07d}\r"
    ).encode()


def oru(i: int) -> bytes:
    lines = [
        f"MSH|^~\\&|LIS|79001|SOKHOE|SOKHOE|20250312113000+0700||ORU^R01^ORU_R01|B-ORU-{i}|P|2.5.1"
        "|||||VNM|UNICODE UTF-8",
        f"PID|1||BN-{i:07d}^^^79001^MR",
        f"OBR|1|XN-{i}|KQ-{i}|SH-PANEL^Sinh hóa máu^L|||20250312070000+0700|||||||||||||||||F",
        f"OBX|1|NM|GLU^Glucose máu lúc đói^L||{4 + i % 5}.{i % 10}|mmol/L|3.9-6.1||||F",
        "OBX|2|NM|CRE^Creatinin huyết thanh^L||82|umol/L|53-97|N|||F",
        "OBX|3|ST|NX^Nhận xét^L||Kết quả trong giới hạn theo dõi.||||||F",
    ]
    return "\r".join(lines).encode()


def _prepare(store: SqlStore) -> None:
    repo = platform_repository(store, BASE, name="bench")
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": "org-79001",
        "name": "Bệnh viện thử tải",
        "identifier": [{"system": FACILITY, "value": "79001"}],
    }
    repo.update(org, "Organization", org["id"])
    path = resources.files("sokhoe.interop.hl7v2") / "samples" / "conceptmap-79001-lab.json"
    cm = json.loads(path.read_text(encoding="utf-8"))
    repo.update(cm, "ConceptMap", cm["id"])


def run(messages: int, connections: int, match: bool, folder: Path) -> dict[str, Any]:
    store = SqlStore(f"sqlite:///{folder / 'bench.db'}")
    _prepare(store)
    loop = asyncio.new_event_loop()
    allow = AllowList.from_settings({"79001": ["127.0.0.1/32"]}, loopback=False)
    server = MllpServer(Hl7Processor(store, BASE, match=match), allow, ListenerLimits())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    people = max(1, messages // 2)
    batches: list[list[bytes]] = [[] for _ in range(connections)]
    for i in range(people):
        batches[i % connections].append(adt(i))
    for i in range(messages - people):
        batches[i % connections].append(oru(i))  # same connection as the A04: ordered
    latencies: list[float] = []

    def one(batch: list[bytes]) -> list[str]:
        acks = []
        with MllpClient("127.0.0.1", port) as client:
            for message in batch:
                start = time.perf_counter()
                acks.append(client.send(message))
                latencies.append(time.perf_counter() - start)
        return acks

    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(connections) as pool:
            acks = [a for result in pool.map(one, batches) for a in result]
    finally:
        elapsed = time.perf_counter() - began
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        store.close()
    refused = [a for a in acks if "MSA|AA|" not in a]
    latencies.sort()
    return {
        "messages": len(acks),
        "refused": len(refused),
        "first_refusal": refused[0].replace("\r", " | ") if refused else None,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(acks) / elapsed, 1),
        "latency_ms_p50": round(1000 * latencies[len(latencies) // 2], 2),
        "latency_ms_p95": round(1000 * latencies[int(len(latencies) * 0.95)], 2),
        "matcher": match,
        "connections": connections,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--no-match", action="store_true", help="register without consulting the matcher"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = run(args.messages, args.connections, not args.no_match, Path(folder))
    print(json.dumps(report, ensure_ascii=False, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
