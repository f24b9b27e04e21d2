#!/usr/bin/env bash
# Computes the example login of docs/PROTOCOL.md (lnpVector in
# login_test.go) with implementations independent of larder's: the
# reference C implementation of Argon2 (Debian package argon2, which reads
# the password from standard input and takes the salt as its first
# argument) and Python's standard library (struct, hashlib, hmac). The
# frame bodies are built here from the layout in docs/PROTOCOL.md.
#
#	apt-get install -y argon2
#	bash lnp/testdata/login-vector.sh
set -euo pipefail
salted=$(printf '%s' 'correct horse' | argon2 0123456789abcdef -id -t 1 -k 64 -p 1 -l 32 -r)
python3 - "$salted" <<'PY'
import hashlib, hmac, struct, sys
salted = bytes.fromhex(sys.argv[1])
def s(b): return struct.pack(">H", len(b)) + b
hello = b"LNP2" + s(b"alice") + bytes([1]) + b"\x11" * 32 + struct.pack(">I", 1 << 20)
challenge = b"\x22" * 32 + bytes([16]) + b"0123456789abcdef" + struct.pack(">IIB", 64, 1, 1)
binding = b"\x33" * 32
am = b"LNP2 SCRAM-SHA-256-PLUS tls-exporter" + s(hello) + s(challenge) + s(binding)
H = lambda k, m: hmac.new(k, m, hashlib.sha256).digest()
client_key = H(salted, b"Client Key")
stored_key = hashlib.sha256(client_key).digest()
server_key = H(salted, b"Server Key")
proof = bytes(a ^ b for a, b in zip(client_key, H(stored_key, am)))
print("HELLO body      ", hello.hex())
print("CHALLENGE body  ", challenge.hex())
print("AuthMessage     ", am.hex())
print("salted key      ", salted.hex())
print("StoredKey       ", stored_key.hex())
print("ServerKey       ", server_key.hex())
print("ClientProof     ", proof.hex())
print("ServerSignature ", H(server_key, am).hex())
PY
