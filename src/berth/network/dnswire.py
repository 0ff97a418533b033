"""The few pieces of the DNS wire format (RFC 1035) the embedded resolver needs. Pure.

Parses the header and question of a query (compression pointers followed), and builds
responses with A and PTR answers. Anything else is forwarded as opaque bytes by ``dns``,
so no general record parser is needed. Written here rather than taken from a library:
~150 lines, and no dependency to vet (dnslib is not installed on this host).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
OPCODE_MASK = 0x7800

UDP_LIMIT = 512
_HEADER = struct.Struct("!HHHHHH")


class DnsFormatError(ValueError):
    """The message is not well-formed DNS."""


@dataclass(frozen=True)
class Question:
    name: str      # lower case, no trailing dot ("" for the root)
    qtype: int
    qclass: int


@dataclass
class Query:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """Decode a (possibly compressed) name at ``offset``; returns (name, offset after it)."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise DnsFormatError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsFormatError("truncated compression pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            if jumps > 32:
                raise DnsFormatError("compression loop")
            continue
        if length & 0xC0:
            raise DnsFormatError("unsupported label type")
        offset += 1
        if length == 0:
            break
        label = data[offset:offset + length]
        if len(label) != length:
            raise DnsFormatError("truncated label")
        labels.append(label.decode("ascii", errors="replace"))
        offset += length
    name = ".".join(labels).lower()
    if len(name) > 253:
        raise DnsFormatError("name too long")
    return name, (end if end is not None else offset)


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"invalid DNS label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def parse_query(data: bytes) -> Query:
    if len(data) < _HEADER.size:
        raise DnsFormatError("message shorter than a header")
    ident, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    query = Query(ident, flags)
    offset = _HEADER.size
    for _ in range(qdcount):
        name, offset = _read_name(data, offset)
        if offset + 4 > len(data):
            raise DnsFormatError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        query.questions.append(Question(name, qtype, qclass))
    return query


@dataclass(frozen=True)
class Answer:
    name: str
    rtype: int
    ttl: int
    rdata: bytes


def a_answer(name: str, ip: str, ttl: int = 600) -> Answer:
    return Answer(name, TYPE_A, ttl, ipaddress.IPv4Address(ip).packed)


def aaaa_answer(name: str, ip: str, ttl: int = 600) -> Answer:
    return Answer(name, TYPE_AAAA, ttl, ipaddress.IPv6Address(ip).packed)


def ptr_answer(name: str, target: str, ttl: int = 600) -> Answer:
    return Answer(name, TYPE_PTR, ttl, encode_name(target))


def reverse_name(ip: str) -> str:
    """10.0.0.2 -> 2.0.0.10.in-addr.arpa; fd00::2 -> 2.0.0.0....0.d.f.ip6.arpa"""
    return ipaddress.ip_address(ip).reverse_pointer


def ip_from_reverse(name: str) -> str | None:
    """2.0.0.10.in-addr.arpa -> 10.0.0.2, the 32 nibbles of an ip6.arpa name -> the IPv6
    address (None if not a full reverse name)."""
    name = name.rstrip(".").lower()
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return None
        return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


def build_response(query: Query, answers: list[Answer], rcode: int = RCODE_NOERROR, *,
                   authoritative: bool = True, limit: int | None = UDP_LIMIT) -> bytes:
    """A response to ``query`` echoing its first question. Answers that do not fit ``limit``
    (UDP: 512 bytes) are dropped and TC is set, so the client retries over TCP."""
    flags = FLAG_QR | FLAG_RA | (query.flags & (OPCODE_MASK | FLAG_RD)) | rcode
    if authoritative:
        flags |= FLAG_AA
    question = b""
    qcount = 0
    if query.questions:
        q = query.questions[0]
        question = encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
        qcount = 1
    body = bytearray(question)
    count = 0
    for answer in answers:
        record = (encode_name(answer.name) + struct.pack("!HHIH", answer.rtype, CLASS_IN, answer.ttl,
                                                         len(answer.rdata)) + answer.rdata)
        if limit is not None and _HEADER.size + len(body) + len(record) > limit:
            flags |= FLAG_TC
            break
        body += record
        count += 1
    return _HEADER.pack(query.id, flags, qcount, count, 0, 0) + bytes(body)


def error_response(data: bytes, rcode: int) -> bytes:
    """A bare error answer for a message we could not (or would not) handle; b"" if hopeless."""
    try:
        query = parse_query(data)
    except DnsFormatError:
        if len(data) < 2:
            return b""
        return _HEADER.pack(struct.unpack_from("!H", data)[0], FLAG_QR | rcode, 0, 0, 0, 0)
    return build_response(query, [], rcode, authoritative=False)


def build_query(name: str, qtype: int = TYPE_A, ident: int = 0x1234) -> bytes:
    """A recursive query (tests, health checks)."""
    return _HEADER.pack(ident, FLAG_RD, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


@dataclass
class Response:
    id: int
    flags: int
    rcode: int
    answers: list[tuple[str, int, bytes]]   # (name, type, rdata)


def parse_response(data: bytes) -> Response:
    """Header and answer records of a response (tests and diagnostics)."""
    ident, flags, qd, an, _ns, _ar = _HEADER.unpack_from(data)
    offset = _HEADER.size
    for _ in range(qd):
        _, offset = _read_name(data, offset)
        offset += 4
    answers = []
    for _ in range(an):
        name, offset = _read_name(data, offset)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        answers.append((name, rtype, data[offset:offset + rdlen]))
        offset += rdlen
    return Response(ident, flags, flags & 0x000F, answers)
