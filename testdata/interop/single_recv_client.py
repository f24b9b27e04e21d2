#!/usr/bin/env python3
"""A course-protocol client that reads a reply the way the course's handout
client does: one recv(4) for a block's length, then ONE recv(length + 76)
for the rest of its header and its payload, never looping on a short read.

This is NOT the course's code. It was written for larder's interoperability
tests from the course protocol reference (see README.md in this folder),
which describes how the handout's Python client reads. Such a client only
works if every block arrives whole as the receiver sees it: a recv that
returns part of a block is a failure here, as it is there ("checksums for a
block did not match"). Blocks are kept in a list by number; every block
hash and the total hash are checked; reading stops once every block is in,
without waiting for the server to close.

Usage:
    single_recv_client.py HOST PORT USER PASSWORD [PATH] [options]

    PATH omitted: register USER. Options:
      --repeat N           fetch N times in one process (one connection
                           each); the payload is written once, and only if
                           every fetch read it whole and alike
      --pause-every K:MS   sleep MS milliseconds after every K blocks: a slow
                           reader, so that the server's writes wait for the
                           receive window
      --mss N              set TCP_MAXSEG to N on the socket before
                           connecting: a path MSS other than loopback's

On status 1 (OK) the payload is written to standard output unchanged. On
any other status the line "status N: MESSAGE" goes to standard error. With
--repeat, a line "K of N replies read whole" goes to standard error too.

Exit codes (those of course_client.py):
     0  status 1 (OK), in every fetch
     1  usage error
     2  network error (cannot connect, connection reset, timeout)
     3  a recv returned part of a block, or a hash did not match
     4  the server closed the connection without sending a single block
    1N  the server replied with status N
With --repeat the code is that of the first fetch that failed.
"""

import hashlib
import socket
import struct
import sys
import time

SALT = ("0123456789" * 7)[:64]
REQUEST_HEADER = 52
MSG_MAX = 1024
REST_OF_HEADER = 76  # status, block number, block count, two hashes
TIMEOUT = 30.0

EXIT_USAGE, EXIT_NETWORK, EXIT_INTEGRITY, EXIT_NO_REPLY = 1, 2, 3, 4


class Failed(Exception):
    """A fetch failed; code is the exit code that says how."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


def build_request(user, password, path):
    name = user.encode("utf-8")[:16].ljust(16, b"\0")
    sig = hashlib.sha256((password + SALT).encode("utf-8")).digest()
    body = path.encode("utf-8") if path is not None else b""
    if len(body) > MSG_MAX - REQUEST_HEADER:
        raise ValueError("path is %d bytes long; the protocol allows %d"
                         % (len(body), MSG_MAX - REQUEST_HEADER))
    return name + sig + struct.pack("!I", len(body)) + body


def fetch(host, port, request, pause, mss):
    """One request, one connection; returns (status, payload)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        if mss:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.connect((host, port))
        sock.sendall(request)
        blocks = None
        missing = 0
        total_hash = None
        received = 0
        while blocks is None or missing:
            first = sock.recv(4)  # one recv, as the handout client does
            if not first and blocks is None:
                raise Failed(EXIT_NO_REPLY, "the server closed the connection without a reply")
            if len(first) != 4:
                raise Failed(EXIT_INTEGRITY, "recv(4) returned %d bytes after %d blocks"
                             % (len(first), received))
            (length,) = struct.unpack("!I", first)
            want = length + REST_OF_HEADER
            rest = sock.recv(want)  # ONE recv: no loop
            if len(rest) != want:
                raise Failed(EXIT_INTEGRITY, "recv(%d) returned %d bytes after %d blocks: "
                             "a block split across reads (the handout client reports "
                             "\"checksums for a block did not match\")"
                             % (want, len(rest), received))
            status, index, count = struct.unpack_from("!III", rest, 0)
            block_hash, this_total = rest[12:44], rest[44:76]
            payload = rest[76:]
            if blocks is None:
                blocks = [None] * max(count, 1)
                missing = len(blocks)
                total_hash = this_total
            if status != 1:
                return status, payload
            if index >= len(blocks) or blocks[index] is not None:
                raise Failed(EXIT_INTEGRITY, "block %d out of range or repeated" % index)
            if hashlib.sha256(payload).digest() != block_hash:
                raise Failed(EXIT_INTEGRITY, "block %d/%d: hash mismatch" % (index, count))
            blocks[index] = payload
            missing -= 1
            received += 1
            if pause and received % pause[0] == 0:
                time.sleep(pause[1])
        data = b"".join(blocks)
        if hashlib.sha256(data).digest() != total_hash:
            raise Failed(EXIT_INTEGRITY, "total hash mismatch")
        return 1, data
    except OSError as e:
        raise Failed(EXIT_NETWORK, "network error: %s" % e)
    finally:
        sock.close()


def main(argv):
    args, opts = [], {"--repeat": "1", "--pause-every": None, "--mss": "0"}
    it = iter(argv[1:])
    for a in it:
        if a in opts:
            opts[a] = next(it, None)
            if opts[a] is None:
                sys.stderr.write("single_recv_client.py: %s needs a value\n" % a)
                return EXIT_USAGE
        else:
            args.append(a)
    if len(args) not in (4, 5):
        sys.stderr.write(__doc__)
        return EXIT_USAGE
    host, port, user, password = args[:4]
    path = args[4] if len(args) == 5 else None
    try:
        port, repeat, mss = int(port), int(opts["--repeat"]), int(opts["--mss"])
        pause = None
        if opts["--pause-every"]:
            k, ms = opts["--pause-every"].split(":")
            pause = (int(k), int(ms) / 1000.0)
        request = build_request(user, password, path)
    except ValueError as e:
        sys.stderr.write("single_recv_client.py: %s\n" % e)
        return EXIT_USAGE

    code, whole, result, failures = None, 0, None, []
    for _ in range(repeat):
        try:
            status, payload = fetch(host, port, request, pause, mss)
        except Failed as e:
            failures.append(str(e))
            code = e.code if code is None else code
            continue
        if status != 1:
            sys.stderr.write("status %d: %s\n" % (status, payload.decode("utf-8", "replace")))
            code = (10 + status if status < 246 else 255) if code is None else code
            continue
        if result is not None and payload != result:
            failures.append("two fetches read different payloads")
            code = EXIT_INTEGRITY if code is None else code
            continue
        result = payload
        whole += 1
    for f in failures[:5]:
        sys.stderr.write("single_recv_client.py: %s\n" % f)
    if repeat > 1:
        sys.stderr.write("%d of %d replies read whole\n" % (whole, repeat))
    if code is not None:
        return code
    sys.stdout.buffer.write(result)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
