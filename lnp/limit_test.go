package lnp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestReaderLimit: under Limit, a frame longer than the limit, DATA
// included, is refused from its header, without its body being read;
// SetBlockSize lifts the limit for control frames.
func TestReaderLimit(t *testing.T) {
	for _, typ := range []Type{TypeHello, TypeData, TypeList} {
		hdr := []byte{byte(typ), 0, 0, 0x04, 0x01} // 1025 bytes, none of them sent
		r := NewReaderSize(bytes.NewReader(hdr), 512)
		r.Limit(MaxHelloBody)
		_, _, err := r.Next()
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Err != nil || !strings.Contains(err.Error(), "the most is 1024") {
			t.Errorf("%v frame of 1025 bytes under Limit(1024): got %v, want a refusal naming the limit", typ, err)
		}
	}
	var b bytes.Buffer
	w := NewWriter(&b, 0)
	w.WriteFrame(TypeList, make([]byte, 5000))
	w.Flush()
	r := NewReaderSize(&b, 512)
	r.Limit(MaxHelloBody)
	r.SetBlockSize(DefaultBlockSize)
	if _, body, err := r.Next(); err != nil || len(body) != 5000 {
		t.Fatalf("after SetBlockSize: got %d bytes, %v; want 5000, nil", len(body), err)
	}
	r.Release()
	if r.r != nil || r.buf != nil {
		t.Errorf("after Release the Reader holds a read buffer (%v) or a body buffer of %d bytes", r.r != nil, cap(r.buf))
	}
}
