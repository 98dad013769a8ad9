"""MLLP: HL7 v2 over TCP, a listener that trusts by network address, and a tiny client.

Framing (HL7 v2.5.1 Appendix C, MLLP release 2): ``0x0B`` message ``0x1C 0x0D``. MLLP carries
no credentials, so the listener decides who may speak for a facility by the peer address:
``Settings.hl7_allowed_sources`` maps a facility code (MSH-4) to the addresses or CIDR blocks
its interface engine sends from; loopback is trusted for every facility only when
``hl7_allow_loopback`` is on (off by default), otherwise it is an address like any other and
speaks for the facilities that list it. A connection from an address no facility lists is
closed at once; a listed address sending for a facility that does not list it gets an ``AR``
NACK naming MSH-4. Each message is then checked
against its own MSH-4 and applied as that facility (``Hl7Processor``).

The framing is done here rather than with ``hl7.mllp`` because the listener must bound the
size of a frame (``hl7_max_message_bytes``: a longer one is answered with a reject and the
connection closed), time out idle and slow senders, and see raw bytes to refuse non-UTF-8
text; ``hl7.mllp`` decodes with a fixed encoding and has neither limit. Parsing is still
python-hl7's.
See: https://www.hl7.org/documentcenter/public/wg/inm/mllp_transport_specification.PDF
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from sokhoe.interop.hl7v2.ack import Header, build_ack
from sokhoe.interop.hl7v2.er7 import SEGMENT_SEQUENCE_ERROR, Hl7Fault
from sokhoe.interop.hl7v2.processor import Hl7Processor

log = logging.getLogger("sokhoe.hl7v2.mllp")

START = b"\x0b"
END = b"\x1c\x0d"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def frame(message: bytes) -> bytes:
    return START + message + END


@dataclass(frozen=True)
class AllowList:
    """Which peer addresses may speak for which facility."""

    networks: Mapping[str, tuple[Network, ...]]
    loopback: bool = False
    """Trust loopback for every facility (``Settings.hl7_allow_loopback``)."""

    @classmethod
    def from_settings(cls, sources: Mapping[str, Iterable[str]], loopback: bool) -> AllowList:
        nets = {
            code.strip().upper(): tuple(ipaddress.ip_network(a, strict=False) for a in addrs)
            for code, addrs in sources.items()
        }
        return cls(nets, loopback)

    def _address(self, peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        return addr

    def connection_allowed(self, peer: str) -> bool:
        """May this address send at all (for some facility)?"""
        addr = self._address(peer)
        if addr is None:
            return False
        if self.loopback and addr.is_loopback:
            return True
        return any(addr in net for nets in self.networks.values() for net in nets)

    def may_send_for(self, peer: str, facility: str) -> bool:
        addr = self._address(peer)
        if addr is None:
            return False
        if self.loopback and addr.is_loopback:
            return True
        return any(addr in net for net in self.networks.get(facility, ()))


@dataclass(frozen=True)
class ListenerLimits:
    max_message_bytes: int = 1024 * 1024
    idle_timeout: float = 300.0
    """Seconds a connection may stay silent between messages."""
    read_timeout: float = 30.0
    """Seconds a started frame may take to arrive."""
    workers: int = 1
    """Threads applying messages. One by default: SQLite has a single writer, and several
    threads only wait on its lock (measured: 4 connections through 4 threads were slower than
    through one). Raise it on PostgreSQL."""


class MllpServer:
    """An asyncio MLLP listener over a processor (messages run in worker threads, since the
    store is synchronous; one connection's messages are applied in order)."""

    def __init__(
        self,
        processor: Hl7Processor,
        allow: AllowList,
        limits: ListenerLimits | None = None,
        *,
        on_message: Callable[[str, str], None] | None = None,
    ) -> None:
        self.processor = processor
        self.allow = allow
        self.limits = limits or ListenerLimits()
        self.on_message = on_message
        self.server: asyncio.Server | None = None
        self._workers = ThreadPoolExecutor(
            max_workers=max(1, self.limits.workers), thread_name_prefix="hl7"
        )

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with ``port=0``)."""
        self.server = await asyncio.start_server(
            self._connection, host, port, limit=self.limits.max_message_bytes + len(END) + 1
        )
        sock = self.server.sockets[0]
        return int(sock.getsockname()[1])

    async def serve_forever(self) -> None:
        if self.server is None:
            raise RuntimeError("start() first")
        async with self.server:
            await self.server.serve_forever()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self._workers.shutdown(wait=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        try:
            if not self.allow.connection_allowed(peer):
                log.warning("HL7 connection from %s refused: not on the allow-list", peer)
                return
            while True:
                raw = await self._read_frame(reader, writer)
                if raw is None:
                    return
                ack = await asyncio.get_running_loop().run_in_executor(
                    self._workers,
                    partial(
                        self.processor.handle,
                        raw,
                        source=peer,
                        sender_allowed=lambda facility: self.allow.may_send_for(peer, facility),
                    ),
                )
                if self.on_message is not None:
                    self.on_message(peer, ack)
                writer.write(frame(ack.encode("utf-8")))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read_frame(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        """One message's bytes; None when the peer is done (closed, idle, or broke the
        framing, after a reject ACK when one can be sent)."""
        try:
            start = await asyncio.wait_for(reader.read(1), self.limits.idle_timeout)
        except TimeoutError:
            return None
        if not start:
            return None
        if start != START:
            await self._reject(writer, "MLLP framing: a message must start with 0x0B")
            return None
        try:
            data = await asyncio.wait_for(reader.readuntil(END), self.limits.read_timeout)
        except asyncio.LimitOverrunError:
            await self._reject(
                writer,
                f"Message longer than {self.limits.max_message_bytes} bytes; split it or ask "
                "the platform to raise hl7_max_message_bytes",
            )
            return None
        except TimeoutError:
            await self._reject(writer, "MLLP frame not completed in time (missing 0x1C 0x0D)")
            return None
        except asyncio.IncompleteReadError:
            return None
        return data[: -len(END)]

    async def _reject(self, writer: asyncio.StreamWriter, text: str) -> None:
        fault = Hl7Fault(text, ack_code="AR", error_code=SEGMENT_SEQUENCE_ERROR)
        writer.write(frame(build_ack(Header(), "AR", fault).encode("utf-8")))
        with contextlib.suppress(ConnectionError):
            await writer.drain()


class MllpClient:
    """One MLLP connection that sends a message and waits for its ACK, message by message."""

    def __init__(
        self, host: str, port: int, *, timeout: float = 30.0, source: str | None = None
    ) -> None:
        """``source``: a local address to send from (tests use another loopback address)."""
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buffer = b""

    def send(self, message: bytes) -> str:
        self.sock.sendall(frame(message))
        while END not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("The listener closed the connection without an ACK")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(END)
        return raw.removeprefix(START).decode("utf-8")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def send(
    messages: Iterable[bytes],
    host: str,
    port: int,
    *,
    timeout: float = 30.0,
    source: str | None = None,
) -> list[str]:
    """Send messages over one MLLP connection, waiting for each ACK; returns the ACK texts."""
    with MllpClient(host, port, timeout=timeout, source=source) as client:
        return [client.send(m) for m in messages]


def as_bytes(text: str) -> bytes:
    """ER7 text as sent on the wire: CR between segments, UTF-8."""
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line]
    return "\r".join(lines).encode("utf-8")


__all__ = [
    "AllowList",
    "ListenerLimits",
    "MllpClient",
    "MllpServer",
    "as_bytes",
    "frame",
    "send",
]
