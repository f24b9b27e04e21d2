package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
)

// courseHandler serves the course protocol on the connections its Server
// accepts (Serve): one request per connection, answered with a status and
// a message or with a file. It holds the replies in flight and its
// counters (its timeouts are the connection's settings, conn.lim);
// the Server runs the lifecycle (listeners, connection slots, Shutdown,
// Close) and the audit trail.
type courseHandler struct {
	srv *Server

	shuffleBlocks atomic.Bool // ShuffleBlocks, which SetShuffleBlocks changes

	downloads downloads      // the replies in flight, for watchAccounts
	counters  courseCounters // for Stats
}

// newCourseHandler returns the course protocol's handler of s.
func newCourseHandler(s *Server) *courseHandler {
	h := &courseHandler{srv: s}
	h.shuffleBlocks.Store(s.ShuffleBlocks)
	return h
}

// SetShuffleBlocks changes, while serving, what ShuffleBlocks set at
// start, from the next reply on (a configuration reload).
func (s *Server) SetShuffleBlocks(on bool) {
	s.init()
	s.course.shuffleBlocks.Store(on)
}

// courseCounters are the course protocol's statistics. Counting an
// exchange costs a few atomic adds: no lock, no allocation.
type courseCounters struct {
	requests  [NumOps][NumStatuses]atomic.Int64
	payload   atomic.Int64
	durations [NumOps]histogram
}

// downloads tracks the replies in flight, with the account each serves,
// for watchAccounts.
type downloads struct {
	mu sync.Mutex
	m  map[*conn]*larder.User
}

// startDownload tracks c's reply to u until endDownload.
func (h *courseHandler) startDownload(c *conn, u *larder.User) {
	h.downloads.mu.Lock()
	defer h.downloads.mu.Unlock()
	if h.downloads.m == nil {
		h.downloads.m = map[*conn]*larder.User{}
	}
	h.downloads.m[c] = u
}

func (h *courseHandler) endDownload(c *conn) {
	h.downloads.mu.Lock()
	defer h.downloads.mu.Unlock()
	delete(h.downloads.m, c)
}

// handle decides the answer to one parsed course-protocol request: a
// status and a message, or a file to send. Errors become a status and a
// message for the client; their internal causes go to the log only.
// Nothing is written here, so that a request waiting for the hash pool
// holds no reply buffer.
func (h *courseHandler) handle(ctx context.Context, req *course.Request, from netip.Addr, remote string) exchange {
	ex := exchange{op: OpRetrieve, remote: remote, user: req.Username}
	if req.IsRegister() {
		ex.op = OpRegister
		ex = h.register(ctx, req, ex)
		// Recorded before the reply is sent: a sync kind is durable
		// before the client hears of its account.
		ev := ex.event(larder.EventRegister)
		if ex.status != course.StatusOK {
			ev.Reason = ex.msg
		}
		h.srv.record(ctx, ev)
		return ex
	}
	// As in the reference server, a leading "/" means the served folder.
	// Taken before any refusal, so that its event names the file asked for.
	ex.path = strings.TrimPrefix(string(req.Body), "/")
	if err := larder.ValidateUsername(req.Username); err != nil {
		ex.status, ex.refused = course.StatusBadRequest, true
		return reply(ex, larder.ErrorMessage(err))
	}
	return h.retrieve(ctx, req, from, ex)
}

func (h *courseHandler) register(ctx context.Context, req *course.Request, ex exchange) exchange {
	if err := larder.ValidateNewUsername(req.Username); err != nil {
		ex.status = course.StatusBadRequest
		return reply(ex, larder.ErrorMessage(err))
	}
	if h.srv.closedRegistration.Load() {
		ex.status = course.StatusBadRequest
		return reply(ex, "registration is closed on this server; ask its administrator for an account")
	}
	_, err := h.srv.Auth.Register(ctx, req.Username, req.Signature[:])
	switch larder.ErrorCode(err) {
	case "":
		ex.status = course.StatusOK
		return reply(ex, "New user "+req.Username+" registered.")
	case larder.ECONFLICT:
		ex.status = course.StatusUserExists
		return reply(ex, "Cannot register user under name '"+req.Username+"', already exists")
	default:
		return failed(ex, err)
	}
}

func (h *courseHandler) retrieve(ctx context.Context, req *course.Request, from netip.Addr, ex exchange) exchange {
	s := h.srv
	start := time.Now()
	u, err := s.Auth.Login(ctx, req.Username, req.Signature[:], from)
	s.recordLogin(ctx, ex.event(larder.EventLogin), credSignature, err, time.Since(start))
	switch code := larder.ErrorCode(err); {
	case code == "":
		s.Auth.RecordLogin(ctx, u)
	case errors.Is(err, auth.ErrLNPOnly):
		ex.status = course.StatusInvalidLogin
		return reply(ex, larder.ErrorMessage(err))
	case code == larder.ENOTFOUND:
		ex.status = course.StatusUserMissing
		return reply(ex, "Cannot serve non-registered user '"+req.Username+"'")
	case code == larder.EUNAUTHORIZED:
		ex.status = course.StatusInvalidLogin
		return reply(ex, "Signature hashes do not match for "+req.Username+".")
	default: // a disabled account, throttling, a busy pool: the error says
		return failed(ex, err)
	}

	// From here on, an error refuses the request.
	ex.refused = true
	f, err := s.fsvc.OpenShared(ex.path)
	if err != nil {
		return failed(ex, err)
	}
	if _, err := course.BlockCount(f.Size); err != nil {
		f.Close()
		ex.status = course.StatusBadRequest
		ex.err = err
		return reply(ex, "file is too large for the course protocol's 32-bit block count")
	}
	// The block hashes of a large file are remembered with its digest, so
	// that sending it again hashes nothing: they were half the server's
	// work for large files (the client checks every block all the same).
	if err := s.fsvc.Hash(ctx, f, course.MaxBlockPayload); err != nil {
		f.Close()
		return failed(ex, err)
	}
	ex.status, ex.file, ex.sum, ex.blockSums, ex.refused = course.StatusOK, f, f.SHA256, f.Blocks, false
	ex.account = u
	return ex
}

// failed answers with the status that err's code maps to and its
// client-safe message, keeping the cause for the log.
func failed(ex exchange, err error) exchange {
	ex.err = err
	switch larder.ErrorCode(err) {
	case larder.EINVALID, larder.ENOTFOUND, larder.ECONFLICT, larder.EFORBIDDEN:
		ex.status = course.StatusBadRequest
	case larder.EUNAUTHORIZED, larder.EDISABLED:
		ex.status = course.StatusInvalidLogin
	default: // EINTERNAL, EUNAVAILABLE, ETHROTTLED: retry later
		ex.status = course.StatusOther
	}
	return reply(ex, larder.ErrorMessage(err))
}

// reply sets the message that answers ex, with ex.status.
func reply(ex exchange, msg string) exchange {
	ex.msg = msg
	return ex
}

// shuffleWindow bounds the memory a shuffled reply needs: blocks are
// permuted within consecutive windows of this many blocks (62 MiB of
// payload), which for the course's small files is a full shuffle.
const shuffleWindow = 1 << 16

// shuffled returns an order function that permutes blocks within windows.
// With keepLast, the last block is sent last and only the others are
// permuted.
func shuffled(count uint32, keepLast bool) func(uint32) uint32 {
	n := count
	if keepLast {
		n--
	}
	var (
		perm []uint32
		base uint32
	)
	return func(i uint32) uint32 {
		if i >= n {
			return i
		}
		if perm == nil || i-base >= uint32(len(perm)) {
			base = i - i%shuffleWindow
			w := min(uint32(shuffleWindow), n-base)
			perm = perm[:0]
			for j := range w {
				perm = append(perm, base+j)
			}
			rand.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		}
		return perm[i-base]
	}
}
