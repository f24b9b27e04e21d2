package xfer

import "os"

// WritebackSize is how many bytes a File writes before it asks the kernel
// to start writing them to the disk.
const WritebackSize = 8 << 20

// File writes to a file from an offset and, every WritebackSize bytes,
// asks the kernel to start writing them to the disk without waiting for
// it (sync_file_range on Linux; nothing elsewhere). Otherwise the kernel
// keeps a transfer's bytes in memory until the fsync that ends it, which
// then waits for the whole file; this way the disk works during the
// transfer and the fsync finds little left.
type File struct {
	f            *os.File
	off, started int64
}

// NewFile returns a File writing f from its offset off.
func NewFile(f *os.File, off int64) *File {
	return &File{f: f, off: off, started: off}
}

// Write writes p at the file's offset.
func (w *File) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= WritebackSize {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}
