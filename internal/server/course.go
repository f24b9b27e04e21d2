package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/wire"
)

// handle answers one parsed course-protocol request. Errors become a status
// and a message for the client; their internal causes go to the log only.
func (s *Server) handle(ctx context.Context, w *wire.Writer, req *wire.Request, from netip.Addr) exchange {
	ex := exchange{op: "retrieve", user: req.Username}
	if req.IsRegister() {
		ex.op = "register"
	}
	if err := larder.ValidateUsername(req.Username); err != nil {
		ex.status = wire.StatusBadRequest
		return reply(w, ex, larder.ErrorMessage(err))
	}
	if req.IsRegister() {
		return s.register(ctx, w, req, ex)
	}
	return s.retrieve(ctx, w, req, from, ex)
}

func (s *Server) register(ctx context.Context, w *wire.Writer, req *wire.Request, ex exchange) exchange {
	if s.ClosedRegistration {
		ex.status = wire.StatusBadRequest
		return reply(w, ex, "registration is closed on this server; ask its administrator for an account")
	}
	_, err := s.Auth.Register(ctx, req.Username, req.Signature[:])
	switch larder.ErrorCode(err) {
	case "":
		ex.status = wire.StatusOK
		return reply(w, ex, "New user "+req.Username+" registered.")
	case larder.ECONFLICT:
		ex.status = wire.StatusUserExists
		return reply(w, ex, "Cannot register user under name '"+req.Username+"', already exists")
	default:
		return s.failed(w, ex, err)
	}
}

func (s *Server) retrieve(ctx context.Context, w *wire.Writer, req *wire.Request, from netip.Addr, ex exchange) exchange {
	// As in the reference server, a leading "/" means the served folder.
	ex.path = strings.TrimPrefix(string(req.Body), "/")

	_, err := s.Auth.Login(ctx, req.Username, req.Signature[:], from)
	switch code := larder.ErrorCode(err); {
	case code == "":
	case code == larder.ENOTFOUND:
		ex.status = wire.StatusUserMissing
		return reply(w, ex, "Cannot serve non-registered user '"+req.Username+"'")
	case code == larder.EUNAUTHORIZED && !errors.Is(err, auth.ErrDisabled):
		ex.status = wire.StatusInvalidLogin
		return reply(w, ex, "Signature hashes do not match for "+req.Username+".")
	default: // a disabled account, throttling, a busy pool: the error says
		return s.failed(w, ex, err)
	}

	f, err := s.Files.Open(ex.path)
	if err != nil {
		return s.failed(w, ex, err)
	}
	defer f.Close()
	count, err := wire.BlockCount(f.Size)
	if err != nil {
		ex.status = wire.StatusBadRequest
		ex.err = err
		return reply(w, ex, "file is too large for the course protocol's 32-bit block count")
	}
	sum, err := s.Files.Digest(f)
	if err != nil {
		return s.failed(w, ex, err)
	}
	var order func(uint32) uint32
	if s.ShuffleBlocks {
		order = shuffled(count)
	}
	ex.status = wire.StatusOK
	ex.bytes, ex.err = w.WritePayload(wire.StatusOK, f, f.Size, sum, order)
	return ex
}

// failed answers with the status that err's code maps to and its
// client-safe message, keeping the cause for the log.
func (s *Server) failed(w *wire.Writer, ex exchange, err error) exchange {
	ex.err = err
	switch larder.ErrorCode(err) {
	case larder.EINVALID, larder.ENOTFOUND, larder.ECONFLICT:
		ex.status = wire.StatusBadRequest
	case larder.EUNAUTHORIZED:
		ex.status = wire.StatusInvalidLogin
	default: // EINTERNAL, EUNAVAILABLE, ETHROTTLED: retry later
		ex.status = wire.StatusOther
	}
	return reply(w, ex, larder.ErrorMessage(err))
}

// reply writes a message reply with ex.status and returns ex, recording a
// write failure if there was no earlier error.
func reply(w *wire.Writer, ex exchange, msg string) exchange {
	if err := w.WriteMessage(ex.status, msg); err != nil && ex.err == nil {
		ex.err = err
	}
	return ex
}

// shuffleWindow bounds the memory a shuffled reply needs: blocks are
// permuted within consecutive windows of this many blocks (62 MiB of
// payload), which for the course's small files is a full shuffle.
const shuffleWindow = 1 << 16

// shuffled returns an order function that permutes blocks within windows.
func shuffled(count uint32) func(uint32) uint32 {
	var (
		perm []uint32
		base uint32
	)
	return func(i uint32) uint32 {
		if perm == nil || i-base >= uint32(len(perm)) {
			base = i - i%shuffleWindow
			n := min(uint32(shuffleWindow), count-base)
			perm = perm[:0]
			for j := range n {
				perm = append(perm, base+j)
			}
			rand.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		}
		return perm[i-base]
	}
}
