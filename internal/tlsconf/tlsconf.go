// Package tlsconf sets up the TLS of larder's native protocol: the
// server's identity and the client's trust in it.
//
// A server needs no certificate authority. On first start LoadOrCreate
// makes a private key and a self-signed certificate in the server's data
// folder, and the server prints the certificate's Fingerprint. A client
// trusts that certificate on first use, the way ssh trusts a host key: it
// pins the fingerprint in its known servers (clientconf.KnownServers) and
// from then on refuses, with a *CertChangedError, a server at that address
// whose certificate differs. Where a certificate authority is wanted, LoadFiles loads a
// certificate it issued and ClientOptions.CAFile or SystemRoots make the
// client verify the chain and the server's name the usual way, without
// pins.
//
// Both sides speak TLS 1.3 only. The server's files that the package keeps
// are written atomically (a temporary file, synced, then linked into
// place, the folder synced), so a crash or a second process never leaves
// half a file; the key is private (mode 0600) and the certificate public
// (0644).
package tlsconf

import (
	"crypto/sha256"
	"encoding/hex"
)

// fingerprintPrefix starts every fingerprint: the hash it names, as ssh
// writes it.
const fingerprintPrefix = "SHA256:"

// Fingerprint returns the fingerprint of the DER-encoded certificate der:
// "SHA256:" and the SHA-256 of der in 64 lower-case hex digits. The digits
// are those that `openssl x509 -noout -fingerprint -sha256 -in cert.pem`
// prints, without its colons and in lower case.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return fingerprintPrefix + hex.EncodeToString(sum[:])
}
