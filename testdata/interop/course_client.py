#!/usr/bin/env python3
"""A re-creation of the course's Python client for the course protocol ("V1").

This is NOT the course's code. It was written for larder's interoperability
tests from the course protocol reference (see README.md in this folder) and
behaves as that reference says the course's client does:

  * the client salt is fixed: "0123456789" repeated and cut to 64 characters;
  * signature = SHA-256(UTF-8(password + salt)), sent raw (32 bytes);
  * the 52-byte header and the body go out in ONE write;
  * the reply is read until the server closes the connection;
  * blocks are accepted in any order, and every block hash and the total
    hash are checked.

Usage:
    course_client.py HOST PORT USER PASSWORD          register USER
    course_client.py HOST PORT USER PASSWORD PATH     retrieve PATH

On status 1 (OK) the payload (the file, or the server's registration message)
is written to standard output unchanged, as bytes. On any other status the
line "status N: MESSAGE" is written to standard error.

Exit codes:
     0  status 1 (OK)
     1  usage error
     2  network error (cannot connect, connection reset, timeout)
     3  the reply failed a check (bad hash, bad header, reply cut short)
     4  the server closed the connection without sending a single block
    1N  the server replied with status N (12 = USER_EXISTS, 13 =
        USER_MISSING, 14 = INVALID_LOGIN, 15 = BAD_REQUEST, 16 = OTHER,
        17 = MALFORMED, other values as 10 + N when N < 246)
"""

import hashlib
import socket
import struct
import sys

SALT = ("0123456789" * 7)[:64]

MSG_MAX = 1024
REQUEST_HEADER = 52
BLOCK_HEADER = 80
MAX_PAYLOAD = MSG_MAX - BLOCK_HEADER  # 944
MAX_REPLY = 256 << 20  # refuse to buffer more than this from a server
TIMEOUT = 30.0  # seconds without progress before giving up

EXIT_USAGE, EXIT_NETWORK, EXIT_INTEGRITY, EXIT_NO_REPLY = 1, 2, 3, 4


class BadReply(Exception):
    """The reply broke a rule of the protocol."""


def signature(password):
    return hashlib.sha256((password + SALT).encode("utf-8")).digest()


def build_request(user, password, path):
    name = user.encode("utf-8")[:16].ljust(16, b"\0")
    body = path.encode("utf-8") if path is not None else b""
    if len(body) > MSG_MAX - REQUEST_HEADER:
        raise ValueError("path is %d bytes long; the protocol allows %d"
                         % (len(body), MSG_MAX - REQUEST_HEADER))
    return name + signature(password) + struct.pack("!I", len(body)) + body


def exchange(host, port, request):
    """Sends request in one write and returns every byte until the close."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks, size = [], 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_REPLY:
                raise BadReply("reply larger than %d bytes" % MAX_REPLY)
            chunks.append(chunk)


def parse_reply(data):
    """Reassembles the first reply in data.

    Returns (status, payload, trailing), where trailing counts the bytes
    after the reply's last block (the reference server sends a second reply
    after a malformed request), or None if data holds no block at all.
    """
    if not data:
        return None
    pos = 0
    first = None
    blocks = {}
    while first is None or len(blocks) < first[2]:
        if len(data) - pos < BLOCK_HEADER:
            if first is None:
                raise BadReply("reply cut short in the first block header")
            raise BadReply("reply ended after %d of %d blocks"
                           % (len(blocks), first[2]))
        length, status, index, count = struct.unpack_from("!IIII", data, pos)
        block_hash = data[pos + 16:pos + 48]
        total_hash = data[pos + 48:pos + 80]
        pos += BLOCK_HEADER
        if length > MAX_PAYLOAD:
            raise BadReply("block %d declares %d payload bytes" % (index, length))
        if len(data) - pos < length:
            raise BadReply("block %d cut short" % index)
        payload = data[pos:pos + length]
        pos += length
        if first is None:
            # A count of 0 with one empty block is an empty payload.
            first = (status, total_hash, max(count, 1), count)
        if (status, total_hash, count) != (first[0], first[1], first[3]):
            raise BadReply("block %d disagrees with the first block" % index)
        if index >= first[2]:
            raise BadReply("block %d is out of range for %d blocks" % (index, count))
        if index in blocks:
            raise BadReply("block %d received twice" % index)
        if index < first[2] - 1 and length != MAX_PAYLOAD:
            raise BadReply("block %d is short (%d bytes)" % (index, length))
        if hashlib.sha256(payload).digest() != block_hash:
            raise BadReply("block %d: hash mismatch" % index)
        blocks[index] = payload
    payload = b"".join(blocks[i] for i in range(first[2]))
    if hashlib.sha256(payload).digest() != first[1]:
        raise BadReply("total hash mismatch")
    return first[0], payload, len(data) - pos


def main(argv):
    if len(argv) not in (5, 6):
        sys.stderr.write("usage: course_client.py HOST PORT USER PASSWORD [PATH]\n")
        return EXIT_USAGE
    host, port, user, password = argv[1], argv[2], argv[3], argv[4]
    path = argv[5] if len(argv) == 6 else None
    if path == "":
        sys.stderr.write("course_client.py: empty PATH (omit it to register)\n")
        return EXIT_USAGE
    try:
        port = int(port)
        request = build_request(user, password, path)
    except ValueError as e:
        sys.stderr.write("course_client.py: %s\n" % e)
        return EXIT_USAGE

    try:
        data = exchange(host, port, request)
    except OSError as e:
        sys.stderr.write("course_client.py: network error: %s\n" % e)
        return EXIT_NETWORK
    except BadReply as e:
        sys.stderr.write("course_client.py: bad reply: %s\n" % e)
        return EXIT_INTEGRITY

    try:
        parsed = parse_reply(data)
    except BadReply as e:
        sys.stderr.write("course_client.py: bad reply: %s\n" % e)
        return EXIT_INTEGRITY
    if parsed is None:
        sys.stderr.write("course_client.py: the server closed the connection without a reply\n")
        return EXIT_NO_REPLY
    status, payload, trailing = parsed
    if trailing:
        sys.stderr.write("course_client.py: ignoring %d bytes after the reply\n" % trailing)
    if status != 1:
        message = payload.decode("utf-8", errors="replace")
        sys.stderr.write("status %d: %s\n" % (status, message))
        return 10 + status if status < 246 else 255
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
