package server_test

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// gateReader reads r, but holds a read at or past offset after until open
// is closed; reached is closed when the first such read arrives.
type gateReader struct {
	r       *bytes.Reader
	after   int64
	open    chan struct{}
	reached chan struct{}
	once    sync.Once
}

func (g *gateReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.after {
		g.once.Do(func() { close(g.reached) })
		<-g.open
	}
	return g.r.ReadAt(p, off)
}

// TestLNPRehashKeepsSessions: a login elsewhere that
// rehashes the account's password hash (a rotated pepper, a stronger
// policy: the same password) ends neither an upload in flight nor an idle
// session, as a password change does.
func TestLNPRehashKeepsSessions(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "vic", "pw")
	up := h.login(t, "vic", sig)
	idle := h.login(t, "vic", sig)

	data := randomBytes(4*lnp.DefaultBlockSize+7, 11)
	gate := &gateReader{r: bytes.NewReader(data), after: lnp.DefaultBlockSize, open: make(chan struct{}), reached: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := up.Put(ctx, "big.bin", gate, int64(len(data)), client.PutOptions{})
		done <- err
	}()
	// The client reads past the first block only once the server has
	// taken the upload (PUT answered): the upload is in flight.
	select {
	case <-gate.reached:
	case err := <-done:
		t.Fatalf("the upload ended before its gate: %v", err)
	}

	// Another server on the same accounts, with a stronger policy: its
	// login rehashes vic's hash.
	other := auth.New(h.users, auth.NewHasher(auth.Params{Memory: 128, Time: 2, Threads: 1}, nil, 1), nil, nil)
	before, err := h.users.UserByName(ctx, "vic")
	must(t, err)
	if _, err := other.Login(ctx, "vic", sig[:], netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	after, err := h.users.UserByName(ctx, "vic")
	must(t, err)
	if after.Verifier == before.Verifier {
		t.Fatal("the other server's login did not rehash")
	}
	time.Sleep(1500 * time.Millisecond) // past the watch over sessions
	close(gate.open)
	if err := <-done; err != nil {
		t.Errorf("the upload in flight during a rehash: %v", err)
	}
	if _, err := idle.Whoami(ctx); err != nil {
		t.Errorf("an idle session after a rehash: %v", err)
	}
	if _, err := up.Stat(ctx, "big.bin"); err != nil {
		t.Errorf("the uploaded file: %v", err)
	}
}
