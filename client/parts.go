package client

import (
	"context"

	"github.com/larderfs/larder/lnp"
)

// Parts returns the account's unfinished uploads: interrupted ones kept
// for a resume, and those being written now. Each holds its file's size
// against the account's quota until it completes, is cancelled, or the
// server lets it expire.
func (s *Session) Parts(ctx context.Context) ([]lnp.Part, error) {
	defer s.begin(ctx)()
	var all []lnp.Part
	after := ""
	for {
		body, err := s.call(ctx, lnp.Parts{After: after})
		if err != nil {
			return nil, err
		}
		r, err := lnp.ParsePartsReply(body)
		if err != nil {
			return nil, err
		}
		all = append(all, r.Parts...)
		if !r.More || len(r.Parts) == 0 {
			return all, nil
		}
		after = r.Parts[len(r.Parts)-1].ID
	}
}

// Cancel removes the unfinished uploads of path, or, if path is "", every
// one not being written now, and returns how many it removed and the
// bytes they held on the server.
func (s *Session) Cancel(ctx context.Context, path string) (lnp.CancelReply, error) {
	if err := checkPaths(path); err != nil {
		return lnp.CancelReply{}, err
	}
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Cancel{Path: path})
	if err != nil {
		return lnp.CancelReply{}, err
	}
	return lnp.ParseCancelReply(body)
}
