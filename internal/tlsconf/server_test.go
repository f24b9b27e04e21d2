package tlsconf_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/tlsconf"
)

var fingerprintRE = regexp.MustCompile(`^SHA256:[0-9a-f]{64}$`)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "tls")
	id, err := tlsconf.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Created {
		t.Error("first LoadOrCreate: Created is false")
	}
	if !fingerprintRE.MatchString(id.Fingerprint) {
		t.Errorf("fingerprint %q, want SHA256: and 64 lower-case hex digits", id.Fingerprint)
	}

	again, err := tlsconf.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created {
		t.Error("second LoadOrCreate: Created is true")
	}
	if again.Fingerprint != id.Fingerprint {
		t.Errorf("reloaded fingerprint %s, want %s", again.Fingerprint, id.Fingerprint)
	}

	if runtime.GOOS != "windows" {
		for name, want := range map[string]fs.FileMode{
			dir:                                  0o700,
			filepath.Join(dir, tlsconf.KeyFile):  0o600,
			filepath.Join(dir, tlsconf.CertFile): 0o644,
		} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %04o, want %04o", filepath.Base(name), got, want)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{tlsconf.CertFile, tlsconf.KeyFile}; !slices.Equal(names, want) {
		t.Errorf("folder holds %v, want only %v", names, want)
	}
}

func TestCreatedCertificate(t *testing.T) {
	id, err := tlsconf.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := id.Leaf
	key, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v, want digital signature only", c.KeyUsage)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v, want server auth", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("the certificate is a CA")
	}
	if life := c.NotAfter.Sub(time.Now()); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("valid for %v more, want about ten years", life)
	}
	if c.NotBefore.After(time.Now()) {
		t.Errorf("not valid before %v, later than now", c.NotBefore)
	}
	if !slices.Contains(c.DNSNames, "localhost") {
		t.Errorf("DNS names %v lack localhost", c.DNSNames)
	}
	if h, err := os.Hostname(); err == nil && net.ParseIP(h) == nil {
		if !slices.Contains(c.DNSNames, strings.ToLower(h)) {
			t.Errorf("DNS names %v lack the host name %q", c.DNSNames, h)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !slices.ContainsFunc(c.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IP addresses %v lack %s", c.IPAddresses, ip)
		}
	}
	// Self-signed: signed by its own key. (CheckSignatureFrom would
	// want a CA.)
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
		t.Errorf("not self-signed: issuer %v, %v", c.Issuer, err)
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	id, err := tlsconf.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, tlsconf.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	if want := "SHA256:" + hex.EncodeToString(sum[:]); id.Fingerprint != want || tlsconf.Fingerprint(block.Bytes) != want {
		t.Errorf("fingerprint %s, Fingerprint(der) %s; want %s", id.Fingerprint, tlsconf.Fingerprint(block.Bytes), want)
	}

	// The doc comment promises openssl's digits.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl to compare with")
	}
	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(dir, tlsconf.CertFile)).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	// "sha256 Fingerprint=AB:CD:…" (or "SHA256 Fingerprint=…" in older versions)
	_, digits, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
	if got := "SHA256:" + strings.ToLower(strings.ReplaceAll(digits, ":", "")); got != id.Fingerprint {
		t.Errorf("openssl says %s, want %s", got, id.Fingerprint)
	}
}

func TestLoadOrCreateRefusesPublicKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	if _, err := tlsconf.LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, tlsconf.KeyFile)
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(keyPath, mode); err != nil {
			t.Fatal(err)
		}
		_, err := tlsconf.LoadOrCreate(dir)
		if err == nil {
			t.Errorf("key with mode %04o was loaded", mode)
			continue
		}
		for _, want := range []string{keyPath, fmt.Sprintf("%04o", mode), "chmod 600 " + keyPath} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: error %q does not mention %q", mode, err, want)
			}
		}
	}
}

func TestLoadOrCreateRecovers(t *testing.T) {
	t.Run("key without certificate", func(t *testing.T) {
		dir := t.TempDir()
		first, err := tlsconf.LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, tlsconf.CertFile)); err != nil {
			t.Fatal(err)
		}
		id, err := tlsconf.LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !id.Created {
			t.Error("Created is false for a new certificate")
		}
		if !id.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(first.Leaf.PublicKey) {
			t.Error("the new certificate is not for the existing key")
		}
	})
	t.Run("certificate without key", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := tlsconf.LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(dir, tlsconf.KeyFile)
		if err := os.Remove(keyPath); err != nil {
			t.Fatal(err)
		}
		_, err := tlsconf.LoadOrCreate(dir)
		if err == nil || !strings.Contains(err.Error(), keyPath) {
			t.Errorf("got %v, want a refusal naming %s", err, keyPath)
		}
		if _, err := os.Stat(keyPath); err == nil {
			t.Error("a new key was made beside the old certificate")
		}
	})
	t.Run("damaged key", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := tlsconf.LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(dir, tlsconf.KeyFile)
		if err := os.WriteFile(keyPath, []byte("not a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := tlsconf.LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), keyPath) {
			t.Errorf("got %v, want an error naming %s", err, keyPath)
		}
	})
	t.Run("key of another pair", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		for _, d := range []string{dir, other} {
			if _, err := tlsconf.LoadOrCreate(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(filepath.Join(other, tlsconf.KeyFile), filepath.Join(dir, tlsconf.KeyFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := tlsconf.LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("got %v, want a mismatch", err)
		}
	})
}

// TestLoadOrCreateConcurrent starts many servers on one fresh folder at
// once, many times: all must end with one pair, made by exactly one.
func TestLoadOrCreateConcurrent(t *testing.T) {
	const rounds, workers = 20, 8
	for range rounds {
		dir := filepath.Join(t.TempDir(), "tls")
		ids := make([]*tlsconf.Identity, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				id, err := tlsconf.LoadOrCreate(dir)
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = id
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		created := 0
		for _, id := range ids {
			if id.Fingerprint != ids[0].Fingerprint {
				t.Fatalf("fingerprints differ: %s and %s", id.Fingerprint, ids[0].Fingerprint)
			}
			if id.Created {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%d callers report that they created the certificate, want 1", created)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Fatalf("folder holds %d files, want 2: temporary files were left", len(entries))
		}
	}
}

// helperEnv names the environment variable that turns this test binary
// into a process that loads or creates an identity and prints its
// fingerprint, for TestLoadOrCreateProcesses.
const helperEnv = "LARDER_TLSCONF_TEST_HELPER"

// TestLoadOrCreateProcesses starts several processes on one fresh folder
// at once: the file system, not a mutex, must make them agree.
func TestLoadOrCreateProcesses(t *testing.T) {
	if dir := os.Getenv(helperEnv); dir != "" {
		id, err := tlsconf.LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("fingerprint %s\n", id.Fingerprint)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := filepath.Join(t.TempDir(), "tls")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for p := range cmds {
		cmds[p] = exec.Command(os.Args[0], "-test.run=^TestLoadOrCreateProcesses$", "-test.v")
		cmds[p].Env = append(os.Environ(), helperEnv+"="+dir)
		cmds[p].Stdout, cmds[p].Stderr = &outs[p], &outs[p]
		if err := cmds[p].Start(); err != nil {
			t.Fatal(err)
		}
	}
	id, err := tlsconf.LoadOrCreate(dir) // join the race
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("helper process %d: %v\n%s", p, err, outs[p].String())
			continue
		}
		if want := "fingerprint " + id.Fingerprint + "\n"; !strings.Contains(outs[p].String(), want) {
			t.Errorf("helper process %d printed %q, want %q", p, outs[p].String(), want)
		}
	}
}

func TestLoadFiles(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, "127.0.0.1")
	id, err := tlsconf.LoadFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if id.Created {
		t.Error("LoadFiles reports Created")
	}
	if id.Fingerprint != tlsconf.Fingerprint(id.Leaf.Raw) {
		t.Errorf("fingerprint %s is not the leaf's", id.Fingerprint)
	}
	if !slices.ContainsFunc(id.Leaf.IPAddresses, func(a net.IP) bool { return a.Equal(net.IPv4(127, 0, 0, 1)) }) {
		t.Errorf("leaf is not the server's certificate: %v", id.Leaf.Subject)
	}

	if runtime.GOOS == "windows" {
		return
	}
	// A key shared through a group is accepted; one others can read is not.
	for mode, ok := range map[fs.FileMode]bool{0o600: true, 0o640: true, 0o400: true, 0o660: false, 0o644: false, 0o604: false} {
		if err := os.Chmod(keyFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := tlsconf.LoadFiles(certFile, keyFile)
		if ok && err != nil {
			t.Errorf("key with mode %04o: %v", mode, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "chmod 600")) {
			t.Errorf("key with mode %04o: got %v, want a refusal naming chmod 600", mode, err)
		}
	}
	if _, err := tlsconf.LoadFiles(filepath.Join(t.TempDir(), "none.pem"), keyFile); err == nil {
		t.Error("a missing certificate file was accepted")
	}
}
