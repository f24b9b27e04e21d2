package server

import (
	"context"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// parts lists the user's unfinished uploads after m.After, as many as fit
// in a frame.
func (ss *session) parts(ctx context.Context, m lnp.Parts) bool {
	ev := larder.Event{Kind: larder.EventList, Reason: "unfinished uploads"}
	parts, err := ss.space.Parts()
	if err != nil {
		return ss.done(ctx, ev, err, nil)
	}
	var r lnp.PartsReply
	size := 4 + 1 // the count and more
	for _, p := range parts {
		if p.ID <= m.After && m.After != "" {
			continue
		}
		e := lnp.Part{ID: p.ID, Path: p.Target, Size: uint64(p.Size), Received: uint64(p.Received), Modified: p.Modified, Active: p.Active}
		n := len(lnp.AppendPart(nil, &e))
		if len(r.Parts) == lnp.MaxPartsReply || size+n > lnp.MaxControlBody-1024 {
			r.More = true
			break
		}
		size += n
		r.Parts = append(r.Parts, e)
	}
	ev.Bytes = int64(len(r.Parts))
	return ss.done(ctx, ev, nil, r.AppendBody(nil))
}

// cancel removes the unfinished uploads of m.Path, or all of them.
func (ss *session) cancel(ctx context.Context, m lnp.Cancel) bool {
	ev := larder.Event{Kind: larder.EventDelete, Path: m.Path, Reason: "unfinished upload cancelled"}
	target := "" // every one
	if m.Path != "" {
		w, err := writable(m.Path)
		if err != nil {
			return ss.done(ctx, ev, err, nil)
		}
		target = w.Path
	}
	n, bytes, err := ss.space.CancelUploads(target)
	ev.Bytes = bytes
	r := lnp.CancelReply{Count: uint64(n), Bytes: uint64(bytes)}
	return ss.done(ctx, ev, err, r.AppendBody(nil))
}
