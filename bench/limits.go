//go:build linux

package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"time"
)

// This file measures the machine's physical limits for moving a file, for
// context beside the native scenario's transfers: a bare copy over
// loopback with and without TLS, what one core hashes and encrypts, and
// what writing the file durably to disk takes. Each returns the bytes it
// moved and the time it took.

// limit is a measurement of the native scenario's limits: run moves n
// bytes and returns a time for each of names, one row each.
type limit struct {
	names []string
	run   func(ctx context.Context) (n int64, times []time.Duration, err error)
}

// oneLimit is a limit with a single figure.
func oneLimit(name string, run func(ctx context.Context) (int64, time.Duration, error)) limit {
	return limit{[]string{name}, func(ctx context.Context) (int64, []time.Duration, error) {
		n, el, err := run(ctx)
		return n, []time.Duration{el}, err
	}}
}

// copyLoopback sends the file at path over a loopback connection to a
// goroutine of this process that reads it into a 1 MiB buffer and drops
// it. With tlsCfg nil, the sender is io.Copy from the file, which Linux
// turns into sendfile; with TLS, it writes 1 MiB at a time, as larder's
// writers do. The time runs from the dial until the reader has every byte.
func copyLoopback(ctx context.Context, path string, server, client *tls.Config) (int64, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{0, err}
			return
		}
		defer c.Close()
		var r io.Reader = c
		if server != nil {
			r = tls.Server(c, server)
		}
		buf := make([]byte, 1<<20)
		var n int64
		for {
			m, err := r.Read(buf)
			n += int64(m)
			if err == io.EOF {
				got <- result{n, nil}
				return
			}
			if err != nil {
				got <- result{n, err}
				return
			}
		}
	}()

	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if client == nil {
		_, err = io.Copy(c, f)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
	} else {
		tc := tls.Client(c, client)
		// A plain io.Writer, so that io.CopyBuffer uses the 1 MiB buffer.
		_, err = io.CopyBuffer(struct{ io.Writer }{tc}, f, make([]byte, 1<<20))
		if err == nil {
			err = tc.CloseWrite()
		}
	}
	if err != nil {
		return 0, 0, err
	}
	select {
	case r := <-got:
		return r.n, time.Since(start), r.err
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
}

// loopbackTLS returns a TLS 1.3 server configuration with a fresh
// self-signed ECDSA P-256 certificate, as larder makes, and a client
// configuration that takes it.
func loopbackTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "larder bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	// The bench made the certificate a moment ago: nothing to verify.
	client = &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	return server, client, nil
}

// hashSpeed hashes a 64 MiB buffer of random bytes with SHA-256, reps
// times, on one core.
func hashSpeed(buf []byte, reps int) (int64, time.Duration, error) {
	start := time.Now()
	var sink byte
	for range reps {
		s := sha256.Sum256(buf)
		sink ^= s[0]
	}
	el := time.Since(start)
	_ = sink
	return int64(reps) * int64(len(buf)), el, nil
}

// sealSpeed encrypts the buffer with AES-128-GCM in records of 16 KiB,
// TLS's largest, reps times, on one core: the cipher that Go's TLS 1.3
// chooses on a CPU with AES instructions.
func sealSpeed(buf []byte, reps int) (int64, time.Duration, error) {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		return 0, 0, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return 0, 0, err
	}
	const record = 16 << 10
	out := make([]byte, 0, record+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	start := time.Now()
	var seq uint64
	for range reps {
		for off := 0; off < len(buf); off += record {
			seq++
			for i := range 8 {
				nonce[len(nonce)-1-i] = byte(seq >> (8 * i))
			}
			out = aead.Seal(out[:0], nonce, buf[off:min(off+record, len(buf))], nil)
		}
	}
	return int64(reps) * int64(len(buf)), time.Since(start), nil
}

// writeFile copies the file at src to a new file at dst, reading 1 MiB at
// a time, as larder's blocks come, and writing each in pieces of chunk
// bytes; then it fsyncs the file and removes it. It returns the time the
// writes took (into the page cache: what scp pays to store a file) and
// the time until the fsync returned (what a larder upload pays on the
// server, and a download into a file on the client).
func writeFile(src, dst string, chunk int) (int64, []time.Duration, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, nil, err
	}
	defer in.Close()
	defer os.Remove(dst)
	start := time.Now()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, nil, err
	}
	var n int64
	buf := make([]byte, 1<<20)
	for err == nil {
		var m int
		m, err = io.ReadFull(in, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
			if m == 0 {
				break
			}
		}
		for p := 0; p < m && err == nil; p += chunk {
			_, err = out.Write(buf[p:min(p+chunk, m)])
		}
		n += int64(m)
	}
	written := time.Since(start)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, []time.Duration{written, time.Since(start)}, err
}

// randomBuffer returns n pseudo-random bytes.
func randomBuffer(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
