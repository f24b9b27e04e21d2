package lnp

import (
	"reflect"
	"testing"
	"time"
)

func TestPartsRepliesRoundTrip(t *testing.T) {
	r := PartsReply{Parts: []Part{
		{ID: "0a1b-20.part", Path: "up/load.bin", Size: 20 << 30, Received: 7 << 20, Modified: time.Unix(1700000000, 5).UTC(), Active: true},
		{ID: "ffee-0.part"},
	}, More: true}
	body := r.AppendBody(nil)
	got, err := ParsePartsReply(body)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("PARTS reply: got %+v, %v; want %+v", got, err, r)
	}
	for n := range len(body) {
		if _, err := ParsePartsReply(body[:n]); !isProtocolError(err) {
			t.Errorf("PARTS reply cut to %d of %d bytes: %v", n, len(body), err)
		}
	}
	c := CancelReply{Count: 3, Bytes: 1 << 40}
	if got, err := ParseCancelReply(c.AppendBody(nil)); err != nil || got != c {
		t.Errorf("CANCEL reply: got %+v, %v; want %+v", got, err, c)
	}
}
