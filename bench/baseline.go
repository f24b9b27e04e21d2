//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/larderfs/larder/course"
)

// baselineMode is the hidden first argument that makes this program the
// baseline server.
const baselineMode = "baseline-server"

// smallFileMax is the largest file the baseline answers from a reply
// precomputed in memory; larger ones it streams unframed.
const smallFileMax = 1 << 20

// baselineFile is what the baseline serves for one path.
type baselineFile struct {
	reply []byte // the whole course-protocol reply, for a small file
	path  string // the file on disk, streamed unframed, for a large one
}

// runBaselineServer is the baseline: a bare TCP server, one goroutine per
// connection, no authentication, no hashing at request time, no connection
// limit, and only the deadlines that keep a stuck peer from holding a
// goroutine for ever. For each connection it reads the 52-byte header and
// the body, then answers a small file with the precomputed reply that
// larder sends for it (so the bytes on the wire are the same), and a large
// one with io.Copy from the file, which Linux turns into sendfile: the
// loopback ceiling. It is what the connection-per-request pattern costs
// with nothing else to do.
func runBaselineServer(args []string) error {
	fs := flag.NewFlagSet(baselineMode, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	dir := fs.String("files", "", "`folder` to serve")
	timeout := fs.Duration("timeout", 10*time.Minute, "deadline of each connection")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to `file` until SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := loadBaselineFiles(*dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}

	// On SIGTERM or SIGINT: stop accepting, flush the profile, exit. The
	// connections in flight are the bench's own and it has finished
	// with them.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of descriptors and the like: back off, as net/http.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serveBaseline(c, files, *timeout)
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	return nil
}

// loadBaselineFiles reads the folder's files: small ones become
// precomputed replies, large ones are remembered by path.
func loadBaselineFiles(dir string) (map[string]baselineFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string]baselineFile)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if info.Size() > smallFileMax {
			files[e.Name()] = baselineFile{path: path}
			continue
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		files[e.Name()] = baselineFile{reply: encodeFileReply(content)}
	}
	return files, nil
}

// encodeFileReply returns the course-protocol reply that carries content
// with status OK, blocks in order, as larder sends it.
func encodeFileReply(content []byte) []byte {
	var b bytes.Buffer
	w := course.NewWriter(&b)
	sum := sha256.Sum256(content)
	if _, err := w.WritePayload(course.StatusOK, bytes.NewReader(content), int64(len(content)), sum, nil); err != nil {
		panic(err) // writing to memory
	}
	w.Flush()
	return b.Bytes()
}

func serveBaseline(c net.Conn, files map[string]baselineFile, timeout time.Duration) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	// The request is read with larder's own codec, the part of its work
	// that the baseline shares; it checks no password.
	req, err := course.ReadRequest(c)
	if err != nil || req.IsRegister() {
		return
	}
	f, ok := files[strings.TrimPrefix(string(req.Body), "/")]
	switch {
	case !ok:
		return
	case f.reply != nil:
		c.Write(f.reply)
	default:
		src, err := os.Open(f.path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
			return
		}
		defer src.Close()
		io.Copy(c, src) // *net.TCPConn.ReadFrom: sendfile
	}
}
