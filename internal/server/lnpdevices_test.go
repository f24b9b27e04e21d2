package server_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/lnp"
)

// auditLog keeps the account events the Authenticator records.
type auditLog struct {
	mu     sync.Mutex
	events []larder.Event
}

func (a *auditLog) Record(_ context.Context, ev larder.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func (a *auditLog) has(prefix string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e.Kind == larder.EventAccount && strings.HasPrefix(e.Reason, prefix) {
			return true
		}
	}
	return false
}

// deviceHarness is an LNP/1 server with alice enrolled, and a device of
// hers.
func deviceHarness(t *testing.T, configure ...func(*server.Server)) (*lnpHarness, *auditLog, [16]byte, [32]byte) {
	t.Helper()
	audit := &auditLog{}
	h := newLNPHarness(t, append([]func(*server.Server){func(s *server.Server) { s.Auth.Audit, s.Audit = audit, audit }}, configure...)...)
	s, err := h.enroll(t, "alice", h.register(t, "alice", "pw"), "pw")
	must(t, err)
	defer s.Close()
	secret := client.NewDeviceSecret()
	r, err := s.AddDevice(context.Background(), "laptop", secret)
	if err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	return h, audit, r.ID, secret
}

func (h *lnpHarness) loginDevice(t testing.TB, user string, id [16]byte, secret [32]byte) (*client.Session, error) {
	t.Helper()
	return client.LoginDevice(context.Background(), h.tlsConn(t), user, id, secret, client.SessionOptions{})
}

// TestLNPDeviceLogin: a device credential logs in with no password, and
// nothing else does: another secret, another device ID, another account.
func TestLNPDeviceLogin(t *testing.T) {
	h, audit, id, secret := deviceHarness(t)
	ctx := context.Background()
	if !audit.has("device added: ") {
		t.Error("no audit event for the device added")
	}
	s, err := h.loginDevice(t, "alice", id, secret)
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	defer s.Close()
	if w, err := s.Whoami(ctx); err != nil || w.User != "alice" {
		t.Fatalf("whoami: %+v, %v", w, err)
	}
	if !audit.has("device login: ") {
		t.Error("no audit event for the device's login")
	}
	list, err := s.Devices(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id || !list[0].Current || list[0].Label != "laptop" || list[0].LastUsed.IsZero() {
		t.Fatalf("Devices: %+v, %v; want the one device, current, used", list, err)
	}
	// A device adds no device.
	var ne *client.LNPError
	if _, err := s.AddDevice(ctx, "more", client.NewDeviceSecret()); !errors.As(err, &ne) || ne.Status != lnp.StatusDenied {
		t.Errorf("AddDevice in a device session: got %v, want DENIED", err)
	}

	other := secret
	other[0] ^= 1
	_, err = h.loginDevice(t, "alice", id, other)
	wantBadLogin(t, "another secret", err)
	otherID := id
	otherID[0] ^= 1
	_, err = h.loginDevice(t, "alice", otherID, secret)
	wantBadLogin(t, "another device ID", err)
	h.register(t, "bob", "pw")
	_, err = h.loginDevice(t, "bob", id, secret)
	wantBadLogin(t, "alice's device as bob", err)
	_, err = h.loginDevice(t, "nobody", id, secret)
	wantBadLogin(t, "an unknown user", err)

	// A stored credential that no longer opens (its pepper retired, or
	// altered) is refused as a revoked device is, so that the client
	// forgets it and asks for the password.
	u, err := h.users.UserByName(ctx, "alice")
	must(t, err)
	must(t, h.devices.TouchDevice(ctx, u.ID, id, time.Now(), "$lnp-device$v=1$keyid=cDk$AAAA"))
	_, err = h.loginDevice(t, "alice", id, secret)
	wantBadLogin(t, "a device whose stored credential does not open", err)
}

// TestLNPDeviceReplayFromNewConnection: a device's login, read in the
// clear above TLS, replayed from a new connection, is refused.
func TestLNPDeviceReplayFromNewConnection(t *testing.T) {
	h, _, id, secret := deviceHarness(t)
	rec := &recorder{Conn: h.tlsConn(t)}
	s, err := client.LoginDevice(context.Background(), rec, "alice", id, secret, client.SessionOptions{})
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	s.Close()
	sent := frames(t, rec.wrote.Bytes())
	if len(sent) != 2 || lnp.Type(sent[0][0]) != lnp.TypeHello || lnp.Type(sent[1][0]) != lnp.TypeProof {
		t.Fatalf("the client sent %d frames; want HELLO and PROOF", len(sent))
	}
	if strings.Contains(rec.wrote.String(), string(secret[:])) {
		t.Fatal("the device login sent its secret")
	}
	if w := h.sendFrames(t, sent); w.Status != lnp.StatusInvalidLogin {
		t.Fatalf("replayed HELLO and PROOF: WELCOME %v %q, want INVALID_LOGIN", w.Status, w.Message)
	}
}

// TestLNPDeviceRevoked: a revoked device's secret, stolen, logs in no
// more; revoked by an administrator (in another process: on the store),
// its live session ends.
func TestLNPDeviceRevoked(t *testing.T) {
	h, audit, id, secret := deviceHarness(t)
	ctx := context.Background()
	live, err := h.loginDevice(t, "alice", id, secret)
	must(t, err)
	defer live.Close()
	if _, err := live.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := h.users.UserByName(ctx, "alice")
	must(t, err)
	// The administrator's command works on the store.
	must(t, h.devices.RevokeDevice(ctx, u.ID, id))
	_, err = h.loginDevice(t, "alice", id, secret)
	wantBadLogin(t, "a revoked device", err)

	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := live.Whoami(ctx)
		var ne *client.LNPError
		if errors.As(err, &ne) && ne.Status == lnp.StatusDenied && strings.Contains(ne.Message, "revoked") {
			break
		}
		if err == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		t.Fatalf("the revoked device's session: got %v, want DENIED \"device credential revoked\"", err)
	}

	// Revoked by its owner, from a password session.
	s, err := h.loginPassword(t, "alice", "pw")
	must(t, err)
	defer s.Close()
	secret2 := client.NewDeviceSecret()
	r, err := s.AddDevice(ctx, "phone", secret2)
	must(t, err)
	must(t, s.RevokeDevice(ctx, r.ID))
	if !audit.has("device revoked by its owner: ") {
		t.Error("no audit event for the owner's revocation")
	}
	_, err = h.loginDevice(t, "alice", r.ID, secret2)
	wantBadLogin(t, "a device its owner revoked", err)
	var ne *client.LNPError
	if err := s.RevokeDevice(ctx, r.ID); !errors.As(err, &ne) || ne.Status != lnp.StatusNotFound {
		t.Errorf("revoking it again: got %v, want NOT_FOUND", err)
	}
}

// TestLNPDeviceRevokeOthers: RevokeOtherDevices keeps the one named.
func TestLNPDeviceRevokeOthers(t *testing.T) {
	h, _, id, secret := deviceHarness(t)
	ctx := context.Background()
	s, err := h.loginPassword(t, "alice", "pw")
	must(t, err)
	defer s.Close()
	secret2 := client.NewDeviceSecret()
	r, err := s.AddDevice(ctx, "phone", secret2)
	must(t, err)
	if n, err := s.RevokeOtherDevices(ctx, r.ID); n != 1 || err != nil {
		t.Fatalf("RevokeOtherDevices: %d, %v; want 1", n, err)
	}
	_, err = h.loginDevice(t, "alice", id, secret)
	wantBadLogin(t, "a device revoked with the others", err)
	kept, err := h.loginDevice(t, "alice", r.ID, secret2)
	if err != nil {
		t.Fatalf("the device kept: %v", err)
	}
	kept.Close()
}

// TestLNPDeviceExpiry: a device past its lifetime logs in no more, and
// the session it opened ends.
func TestLNPDeviceExpiry(t *testing.T) {
	// Long enough for the setup and the first login to come before the
	// expiry on a loaded machine: the lifetime runs from AddDevice.
	h, audit, id, secret := deviceHarness(t, func(s *server.Server) { s.Auth.DeviceLifetime = 5 * time.Second })
	ctx := context.Background()
	live, err := h.loginDevice(t, "alice", id, secret)
	if err != nil {
		t.Fatalf("device login before expiry: %v", err)
	}
	defer live.Close()
	list, err := live.Devices(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("devices: %v, %v; want the one", list, err)
	}
	time.Sleep(time.Until(list[0].Expires) + 100*time.Millisecond)
	_, err = h.loginDevice(t, "alice", id, secret)
	wantBadLogin(t, "an expired device", err)
	if !audit.has("device login refused: ") {
		t.Error("no audit event for the expired device's login")
	}
	var ne *client.LNPError
	if _, err := live.Whoami(ctx); !errors.As(err, &ne) || ne.Status != lnp.StatusDenied || !strings.Contains(ne.Message, "expired") {
		t.Fatalf("the expired device's session: got %v, want DENIED \"device credential expired\"", err)
	}
}

// TestLNPDeviceNoEnumeration: a device login (HELLO v2 method 4, any
// device ID) as a name without an account is answered as one with an
// account: the same challenge shape, the same answer to a wrong proof,
// and in the same time, whatever the account (with devices or none, LNP/1
// only, disabled). Before, only a name found had its device looked up,
// and its challenge came about 45 µs later: an enumeration oracle for
// anyone.
func TestLNPDeviceNoEnumeration(t *testing.T) {
	// No throttle: the test makes hundreds of wrong logins on purpose.
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "unthrottled.db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	users := sqlite.NewUserStore(db)
	h := newLNPHarness(t, func(s *server.Server) {
		s.Auth = auth.New(users, auth.NewHasher(cheapHash, nil, 0), auth.NewCache(0, 0), nil)
		s.Auth.Devices = sqlite.NewDeviceStore(db)
	})
	ctx := context.Background()
	h.registerLNPOnly(t, "alice", "pw")
	s, err := h.loginPassword(t, "alice", "pw")
	must(t, err)
	_, err = s.AddDevice(ctx, "laptop", client.NewDeviceSecret())
	must(t, err)
	s.Close()
	h.register(t, "bob", "pw")
	h.registerLNPOnly(t, "dora", "pw")
	must(t, users.SetDisabled(ctx, "dora", true))

	names := []string{"alice", "bob", "dora", "nobody"}
	id := [16]byte{1, 2, 3} // nobody's device
	// The lower quartiles must agree within an eighth: apart, they
	// differed by a quarter or more (twice that under the race detector);
	// together, by under a twelfth.
	timedAlike(t, names, []string{"HELLO to CHALLENGE"}, func(lo time.Duration) time.Duration { return lo / 8 },
		func(name string) []time.Duration {
			ch, wl, dc, _ := h.challengeHello(t, lnp.Hello2{User: name, Method: lnp.MethodDevice, MaxBlock: lnp.DefaultBlockSize, Device: id})
			if !bytes.Equal(ch.Salt, id[:]) || ch.KDF != (lnp.KDF{}) {
				t.Fatalf("%s: challenge with salt %x at %v, want the device ID at no cost", name, ch.Salt, ch.KDF)
			}
			if wl.Status != lnp.StatusInvalidLogin || wl.Message != "unknown user or wrong password" {
				t.Fatalf("%s: a wrong proof is answered %v %q", name, wl.Status, wl.Message)
			}
			return []time.Duration{dc}
		})
}

// TestLNPDeviceAccountDisabledMeanwhile: a device login whose account is
// disabled between the HELLO and the PROOF logs in to the account as it
// is at the PROOF, as a password's does: it is told that the account is
// disabled, and gets no session.
func TestLNPDeviceAccountDisabledMeanwhile(t *testing.T) {
	h, audit, id, secret := deviceHarness(t)
	conn := h.tlsConn(t)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	hello := lnp.Hello2{User: "alice", Method: lnp.MethodDevice, MaxBlock: lnp.DefaultBlockSize, Device: id}
	helloBody := hello.AppendBody(nil)
	must(t, w.WriteFrame(lnp.TypeHello, helloBody))
	must(t, w.Flush())
	typ, body, err := r.Next()
	if err != nil || typ != lnp.TypeChallenge {
		t.Fatalf("HELLO: %v %v, want a CHALLENGE", typ, err)
	}
	chBody := append([]byte(nil), body...)

	must(t, h.users.SetDisabled(context.Background(), "alice", true))

	state := conn.ConnectionState()
	binding, err := state.ExportKeyingMaterial(lnp.ChannelBindingLabel, nil, 32)
	must(t, err)
	keys := lnp.DeriveKeys(secret)
	must(t, w.Write(lnp.Proof{Proof: keys.ClientProof(lnp.AuthMessage(helloBody, chBody, binding))}))
	must(t, w.Flush())
	typ, body, err = r.Next()
	must(t, err)
	if typ != lnp.TypeWelcome {
		t.Fatalf("PROOF of a device of an account disabled meanwhile: got %v, want WELCOME", typ)
	}
	wl, err := lnp.ParseWelcome(body)
	if err != nil || wl.Status != lnp.StatusInvalidLogin || wl.Message != `account "alice" is disabled` {
		t.Errorf("PROOF of a device of an account disabled meanwhile: WELCOME %+v (%v), want INVALID_LOGIN saying it is disabled", wl, err)
	}
	if audit.has("device login: ") {
		t.Error("the refused login was recorded as a device login")
	}
}
