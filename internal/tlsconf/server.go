package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/larderfs/larder/internal/flock"
)

// Names of the files in the folder of LoadOrCreate.
const (
	KeyFile  = "key.pem"
	CertFile = "cert.pem"
)

// certLifetime is how long a certificate that LoadOrCreate makes is valid.
// Clients that pin it do not look at its dates; a long life spares the
// administrator a renewal that every client would see as a changed
// certificate.
const certLifetime = 10 * 365 * 24 * time.Hour

// maxPEMFile bounds what is read of a key or certificate file: a chain of a
// dozen certificates takes a few tens of KiB.
const maxPEMFile = 1 << 20

// An Identity is what a server proves itself with: a certificate and its
// private key.
type Identity struct {
	// Certificate is the certificate chain and private key, as a tls.Config
	// wants them.
	Certificate tls.Certificate
	// Leaf is the parsed first certificate of the chain: the server's own.
	Leaf *x509.Certificate
	// Fingerprint is Fingerprint(Leaf.Raw), which the server prints so that
	// its users can check what their clients pin.
	Fingerprint string
	// Created reports whether this call of LoadOrCreate made the
	// certificate, on the server's first start; LoadFiles leaves it false.
	Created bool
}

// ServerConfig returns a TLS configuration for a server proving itself
// with id: TLS 1.3 only, and otherwise Go's defaults (which prefer AES-GCM
// where the processor has instructions for it, ChaCha20-Poly1305 where it
// has not).
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Certificate},
	}
}

// LoadOrCreate returns the server identity kept in folder dir, in the files
// KeyFile and CertFile, creating what is missing: the folder with mode
// 0700; a private key (ECDSA P-256) with mode 0600; a self-signed
// certificate for it, valid for ten years, for the names localhost,
// 127.0.0.1, ::1 and the machine's host name. If the key exists without the
// certificate (a crash between the two), a certificate is made for that
// key; a certificate without its key is refused, since a new key would make
// every client that pinned the old certificate refuse the server.
//
// Several processes may call LoadOrCreate on one folder at once: each file
// is written under a temporary name and hard-linked to its final name,
// which fails if the name exists, so exactly one key and one certificate
// win and the losers load them. The folder's file system must therefore
// support hard links.
//
// The key file is refused if its group or others may access it, with the
// chmod that fixes it, as larder refuses such a pepper file.
func LoadOrCreate(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)

	keyPEM, err := readKeyFile(keyPath, 0o077)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(certPath); serr != nil {
			keyPEM, err = createKey(keyPath)
		} else if keyPEM, err = readKeyFile(keyPath, 0o077); errors.Is(err, fs.ErrNotExist) {
			// Not another process that made both since we looked: the
			// key is published before the certificate, so it is gone.
			return nil, fmt.Errorf("tlsconf: %s exists but its key %s does not: restore the key from a backup, or remove %s to make a new pair (clients that pinned the old certificate will then refuse the server until their users remove its line from their known_servers)",
				certPath, keyPath, certPath)
		}
	}
	if err != nil {
		return nil, err
	}

	created := false
	certPEM, err := readFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		certPEM, created, err = createCert(certPath, keyPath, keyPEM)
	}
	if err != nil {
		return nil, err
	}

	id, err := newIdentity(certPath, keyPath, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	id.Created = created
	return id, nil
}

// createKey creates the key file at path with a new key, unless another
// process does so first, and returns the file's content: the key that won.
func createKey(path string) ([]byte, error) {
	pemBytes, err := newKeyPEM()
	if err != nil {
		return nil, err
	}
	if _, err := publish(path, pemBytes, 0o600); err != nil {
		return nil, err
	}
	// Read what won, ours or another process's, through the checks of
	// every start.
	return readKeyFile(path, 0o077)
}

// createCert creates the certificate file at path with a new self-signed
// certificate for the key keyPEM, read from keyPath, unless another process
// does so first. It returns the file's content, the certificate that won,
// and whether it was this call's.
func createCert(path, keyPath string, keyPEM []byte) (certPEM []byte, created bool, err error) {
	key, err := parseKey(keyPath, keyPEM)
	if err != nil {
		return nil, false, err
	}
	pemBytes, err := newCertPEM(key)
	if err != nil {
		return nil, false, err
	}
	// The certificate is public: a client may take it as its CAFile.
	if created, err = publish(path, pemBytes, 0o644); err != nil {
		return nil, false, err
	}
	if created {
		return pemBytes, true, nil
	}
	certPEM, err = readFile(path)
	return certPEM, false, err
}

// LoadFiles returns the identity in certFile, a PEM certificate chain with
// the server's certificate first (as certificate authorities issue them),
// and keyFile, its PEM private key. The key file is refused if others may
// access it or its group may write it; unlike the key of LoadOrCreate, it
// may be readable by its group, since system packages often share keys with
// services through a group such as ssl-cert.
func LoadFiles(certFile, keyFile string) (*Identity, error) {
	keyPEM, err := readKeyFile(keyFile, 0o037)
	if err != nil {
		return nil, err
	}
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, err
	}
	return newIdentity(certFile, keyFile, certPEM, keyPEM)
}

// newIdentity pairs the certificate chain certPEM, read from certPath, with
// the key keyPEM, read from keyPath.
func newIdentity(certPath, keyPath string, certPEM, keyPEM []byte) (*Identity, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: certificate %s with key %s: %w", certPath, keyPath, err)
	}
	leaf := cert.Leaf
	if leaf == nil { // only with GODEBUG x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsconf: certificate %s: %w", certPath, err)
		}
		cert.Leaf = leaf
	}
	return &Identity{Certificate: cert, Leaf: leaf, Fingerprint: Fingerprint(leaf.Raw)}, nil
}

// readFile reads the file at path, up to maxPEMFile bytes. A missing file
// is an error for which errors.Is(err, fs.ErrNotExist) holds.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	defer f.Close()
	return readAll(path, f)
}

func readAll(path string, f *os.File) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("tlsconf: %s is larger than %d bytes", path, maxPEMFile)
	}
	return b, nil
}

// readKeyFile reads the private key file at path, refusing anything but a
// regular file and a file with any of the permission bits in forbidden. A
// symbolic link is followed: what is checked is the file it leads to.
func readKeyFile(path string, forbidden fs.FileMode) ([]byte, error) {
	// Stat first, so that a FIFO or a device is refused before an open
	// that could block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tlsconf: key file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key file: %w", err)
	}
	defer f.Close()
	// Check what was opened, not what the path named a moment ago.
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("tlsconf: key file: %w", err)
	}
	// Windows has no such mode bits (Go reports 0666 or 0444 there).
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&forbidden != 0 {
		return nil, fmt.Errorf("tlsconf: key file %s has mode %04o: other users can read or change it, and it holds the secret that proves the server's identity to its clients; make it private to the server's user: chmod 600 %s",
			path, perm, path)
	}
	return readAll(path, f)
}

// parseKey parses the PEM private key keyPEM, read from path, as a signer.
func parseKey(path string, keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("tlsconf: key file %s holds no PKCS #8 private key (a PEM block \"PRIVATE KEY\")", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key file %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tlsconf: key file %s: a %T cannot sign", path, key)
	}
	return signer, nil
}

// newKeyPEM returns a new ECDSA P-256 private key in PEM-encoded PKCS #8.
// P-256 rather than Ed25519, because every TLS client verifies it.
func newKeyPEM() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newCertPEM returns a new self-signed certificate for key, PEM-encoded.
func newCertPEM(key crypto.Signer) ([]byte, error) {
	host := hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		// A nil SerialNumber makes CreateCertificate draw a random one.
		Subject: pkix.Name{CommonName: strings.TrimSpace("larder " + host)},
		// An hour back, for a client whose clock is behind that checks
		// the dates: one that trusts cert.pem as its CAFile.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: making a certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// hostname returns the machine's host name in lower case, or "" if it has
// none that a certificate can hold: a certificate's names are ASCII.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for i := range len(h) {
		if c := h[i]; c <= ' ' || c >= 0x7f {
			return ""
		}
	}
	return h
}

// publish creates the file at path holding data, with mode perm, unless it
// exists: it writes a temporary file beside it, syncs it and hard-links it
// to path, which fails if path exists; then it syncs the folder. It reports
// whether it created path; when it did not, another process did, and
// data is discarded.
func publish(path string, data []byte, perm fs.FileMode) (created bool, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return false, fmt.Errorf("tlsconf: %w", err)
	}
	defer os.Remove(tmp.Name()) // once linked, path keeps the content
	if err := writeSynced(tmp, data, perm); err != nil {
		return false, fmt.Errorf("tlsconf: writing %s: %w", path, err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tlsconf: creating %s: %w", path, err)
	}
	if err := flock.SyncDir(dir); err != nil {
		return false, fmt.Errorf("tlsconf: %w", err)
	}
	return true, nil
}

// writeSynced writes data to f, sets its mode to perm, syncs and closes it.
// It closes f even when it fails.
func writeSynced(f *os.File, data []byte, perm fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil && perm != 0o600 {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
