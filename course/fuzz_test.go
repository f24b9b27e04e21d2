package course

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/larderfs/larder"
)

// splitReader returns the bytes of data in two reads, split at n, as TCP
// may deliver a frame in two segments.
type splitReader struct {
	data []byte
	n    int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := len(r.data)
	if r.n > 0 {
		k = min(k, r.n)
	}
	k = min(k, len(p))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	r.n -= k
	return k, nil
}

// FuzzReadRequest checks that any input either fails with a ProtocolError
// (or io.EOF for nothing at all) or decodes to a request that re-encodes to
// the bytes it was read from; and that splitting the input at every
// position gives the same answer.
func FuzzReadRequest(f *testing.F) {
	sig := larder.NewSignature("pw", CourseSalt)
	f.Add(rawRequest("alice", sig, 0, ""))
	f.Add(rawRequest("alice", sig, 9, "notes.txt"))
	f.Add(rawRequest("bob\x00x", sig, 1, "x"))
	f.Add(rawRequest("a", sig, 5, "ab"))
	f.Add(rawRequest("a", sig, 0xffffffff, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			var pe *ProtocolError
			if err != io.EOF && !errors.As(err, &pe) {
				t.Fatalf("error %v is neither io.EOF nor a *ProtocolError", err)
			}
		} else {
			enc, err := req.AppendBinary(nil)
			if err != nil {
				t.Fatalf("decoded request does not re-encode: %v", err)
			}
			// Re-encoding pads the name with NULs, which is what was read.
			if !bytes.Equal(enc, data[:len(enc)]) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, data[:len(enc)])
			}
		}
		for n := 1; n < len(data); n++ {
			req2, err2 := ReadRequest(&splitReader{data: data, n: n})
			if (err == nil) != (err2 == nil) {
				t.Fatalf("split at %d: error %v, unsplit error %v", n, err2, err)
			}
			if err == nil && (req2.Username != req.Username || req2.Signature != req.Signature || !bytes.Equal(req2.Body, req.Body)) {
				t.Fatalf("split at %d decodes differently", n)
			}
		}
	})
}

// FuzzReadBlock checks the client-side block decoder in the same way: no
// panic, no payload longer than the limit, a decoded block re-encodes to
// its input, and a split at any position changes nothing.
func FuzzReadBlock(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.WriteMessage(StatusOK, "New user alice registered.")
	data := bytes.Repeat([]byte("ab\r\n\x00"), 400)
	w.WritePayload(StatusOK, bytes.NewReader(data), int64(len(data)), sha256.Sum256(data), nil)
	w.Flush()
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:50])
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(r io.Reader) ([][]byte, error) {
			br := NewBlockReader(r)
			var frames [][]byte
			for {
				h, p, err := br.ReadBlock()
				if err == io.EOF {
					return frames, nil
				}
				if err != nil {
					var pe *ProtocolError
					if !errors.As(err, &pe) {
						t.Fatalf("error %v is not a *ProtocolError", err)
					}
					return frames, err
				}
				if len(p) > MaxBlockPayload || int(h.Length) != len(p) {
					t.Fatalf("payload of %d bytes for declared length %d", len(p), h.Length)
				}
				frame, _ := h.AppendBinary(nil)
				frames = append(frames, append(frame, p...))
			}
		}
		frames, err := read(bytes.NewReader(data))
		// CutBlock, on the same bytes in memory, finds the same blocks
		// and fails where ReadBlock fails.
		var cut [][]byte
		var cerr error
		for rest := data; ; {
			var h BlockHeader
			var p []byte
			h, p, rest, cerr = CutBlock(rest)
			if cerr == io.EOF {
				cerr = nil
				break
			}
			if cerr != nil {
				break
			}
			frame, _ := h.AppendBinary(nil)
			cut = append(cut, append(frame, p...))
		}
		if (err == nil) != (cerr == nil) || err != nil && err.Error() != cerr.Error() || !slices.EqualFunc(cut, frames, bytes.Equal) {
			t.Fatalf("CutBlock: %d blocks, error %v; ReadBlock: %d blocks, error %v", len(cut), cerr, len(frames), err)
		}
		if joined := bytes.Join(frames, nil); !bytes.Equal(joined, data[:len(joined)]) {
			t.Fatal("decoded blocks do not re-encode to their input")
		}
		// Every split inside the first block and into the second; beyond
		// that the decoder is in the same state it was in at the start.
		for n := 1; n < min(len(data), MaxMessageSize+BlockHeaderSize+1); n++ {
			frames2, err2 := read(&splitReader{data: data, n: n})
			if (err == nil) != (err2 == nil) || len(frames2) != len(frames) {
				t.Fatalf("split at %d: %d blocks, error %v; unsplit %d blocks, error %v", n, len(frames2), err2, len(frames), err)
			}
		}
	})
}
