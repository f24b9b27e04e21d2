package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// peppers writes a pepper file of "ID KEYBYTE" pairs, each key 32 bytes of
// that byte, the last current, and loads it.
func peppers(t *testing.T, ids ...string) *auth.Peppers {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id[:2] + " " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{id[2]}, 32)) + "\n")
	}
	path := filepath.Join(t.TempDir(), "pepper")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ps, err := auth.LoadPeppers(path)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

var lnpSalt = []byte("0123456789abcdef")

func lnpKeys(password string) (lnp.Keys, auth.LNPKeys) {
	k := lnp.DeriveKeys(lnp.SaltedKey(password, lnpSalt, lnp.KDF{Memory: cheap.Memory, Time: cheap.Time, Threads: cheap.Threads}))
	return k, auth.LNPKeys{StoredKey: k.StoredKey, ServerKey: k.ServerKey}
}

// TestLNPCredentialSealed: a stored LNP/1 credential holds neither key
// in the clear; it opens only with its pepper, for its own account, with
// the parameters it was made with. A copy of the database without the
// pepper file gives nothing to log in with or to test guesses against.
func TestLNPCredentialSealed(t *testing.T) {
	h := auth.NewHasher(cheap, peppers(t, "p1\x01", "p2\x02"), 1)
	_, keys := lnpKeys("pw")
	stored, err := h.SealLNP("alice", lnpSalt, cheap, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$lnp-scram$v=1$m=64,t=1,p=1,keyid=cDI$") {
		t.Fatalf("stored %q: want an lnp-scram credential with pepper p2", stored)
	}
	raw, _ := base64.RawStdEncoding.DecodeString(stored[strings.LastIndexByte(stored, '$')+1:])
	if bytes.Contains(raw, keys.StoredKey[:8]) || bytes.Contains(raw, keys.ServerKey[:8]) {
		t.Fatal("the stored credential holds a key in the clear")
	}
	// Retiring p2 must wait for this credential (larder admin pepper).
	if ids := h.PepperIDs(stored); len(ids) != 1 || ids[0] != "p2" {
		t.Errorf("PepperIDs of the credential: got %q, want [p2]", ids)
	}
	if _, _, got, err := h.OpenLNP("alice", stored); err != nil || got != keys {
		t.Fatalf("OpenLNP: %v, keys equal %v", err, got == keys)
	}
	for _, c := range []struct {
		name   string
		h      *auth.Hasher
		user   string
		stored string
	}{
		{"without a pepper file", auth.NewHasher(cheap, nil, 1), "alice", stored},
		{"with another key under the same ID", auth.NewHasher(cheap, peppers(t, "p2\x09"), 1), "alice", stored},
		{"moved to another account", h, "bob", stored},
		{"with its cost altered", h, "alice", strings.Replace(stored, "m=64", "m=65", 1)},
	} {
		_, _, _, err := c.h.OpenLNP(c.user, c.stored)
		if larder.ErrorCode(err) != larder.EINTERNAL {
			t.Errorf("%s: got %v, want an error with code EINTERNAL", c.name, err)
		}
	}
}

// login runs a channel-bound login against a, as a client with password
// would, over a made-up channel binding.
func login(t *testing.T, a *auth.Authenticator, user, password string) (*auth.LNPResult, error) {
	t.Helper()
	ctx := context.Background()
	hello := lnp.Hello2{User: user, Method: lnp.MethodPassword, MaxBlock: lnp.DefaultBlockSize}.AppendBody(nil)
	c, err := a.StartLNP(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	ch := lnp.Challenge{Nonce: c.Nonce, Salt: c.Salt, KDF: lnp.KDF{Memory: c.KDF.Memory, Time: c.KDF.Time, Threads: c.KDF.Threads}}
	am := lnp.AuthMessage(hello, ch.AppendBody(nil), bytes.Repeat([]byte{3}, 32))
	k := lnp.DeriveKeys(lnp.SaltedKey(password, ch.Salt, ch.KDF))
	res, err := a.FinishLNP(ctx, c, am, k.ClientProof(am), testAddr)
	if err == nil && res.ServerSignature != lnp.ServerSignature(k.ServerKey, am) {
		t.Fatal("FinishLNP's server signature is not HMAC(ServerKey, AuthMessage)")
	}
	return res, err
}

// TestLNPResealOnRotation: after a pepper rotation, a login seals the
// account's credential again with the current pepper, without the client;
// the credential is unchanged otherwise, and still logs in.
func TestLNPResealOnRotation(t *testing.T) {
	ctx := context.Background()
	store, server := twoServers(t)
	old := server(cheap, peppers(t, "p1\x01"))
	u, err := old.Register(ctx, "alice", signature("pw"))
	if err != nil {
		t.Fatal(err)
	}
	_, keys := lnpKeys("pw")
	if err := old.EnrollLNP(ctx, u, lnpSalt, cheap, keys, testAddr); err != nil {
		t.Fatal(err)
	}
	rotated := server(cheap, peppers(t, "p1\x01", "p2\x02"))
	describe := auth.NewHasher(cheap, nil, 1)
	for i, want := range []string{"lnp-scram m=64,t=1,p=1 pepper=p2", "lnp-scram m=64,t=1,p=1 pepper=p2"} {
		res, err := login(t, rotated, "alice", "pw")
		if err != nil || res.Renew {
			t.Fatalf("login %d after the rotation: %+v, %v", i, res, err)
		}
		u, _ := store.UserByName(ctx, "alice")
		if got, _ := describe.DescribeLNP(u.LNPCredential); got != want {
			t.Errorf("after login %d: credential %s, want %s", i, got, want)
		}
	}
	if _, err := login(t, rotated, "alice", "wrong"); larder.ErrorCode(err) != larder.EUNAUTHORIZED {
		t.Errorf("a wrong password after the reseal: got %v, want EUNAUTHORIZED", err)
	}
}

// TestEnrollLNPPolicy: a credential below the policy in any parameter, or
// above what the server allows (memory, passes, lanes), is refused; the policy's is stored, and
// the course signature then no longer opens LNP/1.
func TestEnrollLNPPolicy(t *testing.T) {
	ctx := context.Background()
	_, server := twoServers(t)
	a := server(auth.Params{Memory: 64, Time: 2, Threads: 1}, nil)
	u, err := a.Register(ctx, "alice", signature("pw"))
	if err != nil {
		t.Fatal(err)
	}
	_, keys := lnpKeys("pw")
	for _, p := range []auth.Params{{Memory: 32, Time: 2, Threads: 1}, {Memory: 64, Time: 1, Threads: 1}, {Memory: 1 << 20, Time: 2, Threads: 1}, {Memory: 64, Time: 100, Threads: 1},
		// more lanes than larder's client computes: the account could
		// never log in again with it
		{Memory: 64 * 17, Time: 2, Threads: 17}, {Memory: 19456, Time: 2, Threads: 255}} {
		if err := a.EnrollLNP(ctx, u, lnpSalt, p, keys, testAddr); larder.ErrorCode(err) != larder.EINVALID {
			t.Errorf("enroll at %v: got %v, want EINVALID", p, err)
		}
	}
	if _, err := a.LoginSignature(ctx, "alice", signature("pw"), testAddr, true); err != nil {
		t.Fatalf("the signature before enrollment: %v", err)
	}
	if err := a.EnrollLNP(ctx, u, lnpSalt, auth.Params{Memory: 64, Time: 2, Threads: 1}, keys, testAddr); err != nil {
		t.Fatalf("enroll at the policy: %v", err)
	}
	_, err = a.LoginSignature(ctx, "alice", signature("pw"), testAddr, true)
	if larder.ErrorCode(err) != larder.EUNAUTHORIZED {
		t.Fatalf("the signature after enrollment: got %v, want EUNAUTHORIZED", err)
	}
	if _, err := a.Login(ctx, "alice", signature("pw"), testAddr); err != nil {
		t.Fatalf("the course protocol's login after enrollment: %v", err)
	}
}

// TestEnrollLNPAfterPasswordChange: an enrollment that began with the old
// password's signature and ends after the password was changed (by the
// user, or by an administrator after a compromise) stores nothing. The old
// password's credential would otherwise open LNP/1 for whoever knew it,
// and lock the new password out of it, since the account would be
// enrolled.
func TestEnrollLNPAfterPasswordChange(t *testing.T) {
	ctx := context.Background()
	_, server := twoServers(t)
	a := server(cheap, nil)
	if _, err := a.Register(ctx, "alice", signature("old")); err != nil {
		t.Fatal(err)
	}
	u, err := a.LoginSignature(ctx, "alice", signature("old"), testAddr, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ChangeSignature(ctx, "alice", signature("old"), signature("new"), testAddr); err != nil {
		t.Fatal(err)
	}
	_, keys := lnpKeys("old")
	if err := a.EnrollLNP(ctx, u, lnpSalt, cheap, keys, testAddr); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("enroll the old password after the change: got %v, want ECONFLICT", err)
	}
	if _, err := login(t, a, "alice", "old"); larder.ErrorCode(err) != larder.EUNAUTHORIZED {
		t.Errorf("the old password over LNP/1 after the change: got %v, want EUNAUTHORIZED", err)
	}
	if _, err := a.LoginSignature(ctx, "alice", signature("new"), testAddr, true); err != nil {
		t.Errorf("the new signature, to enroll the new password: %v", err)
	}
}

// TestFinishLNPAfterChange: a right proof for the credential the account
// had at the HELLO does not log in once its password was changed, or the
// account disabled or deleted, before the PROOF arrived.
func TestFinishLNPAfterChange(t *testing.T) {
	ctx := context.Background()
	for _, change := range []struct {
		name string
		do   func(a *auth.Authenticator, s larder.UserStore) error
		want string
	}{
		{"password changed", func(a *auth.Authenticator, _ larder.UserStore) error {
			_, err := a.ChangeSignature(ctx, "alice", signature("pw"), signature("new"), testAddr)
			return err
		}, larder.EUNAUTHORIZED},
		{"account disabled", func(_ *auth.Authenticator, s larder.UserStore) error {
			return s.SetDisabled(ctx, "alice", true)
		}, larder.EDISABLED},
		{"account deleted", func(_ *auth.Authenticator, s larder.UserStore) error {
			return s.DeleteUser(ctx, "alice")
		}, larder.EUNAUTHORIZED},
	} {
		t.Run(change.name, func(t *testing.T) {
			store, server := twoServers(t)
			a := server(cheap, nil)
			u, err := a.Register(ctx, "alice", signature("pw"))
			if err != nil {
				t.Fatal(err)
			}
			_, keys := lnpKeys("pw")
			if err := a.EnrollLNP(ctx, u, lnpSalt, cheap, keys, testAddr); err != nil {
				t.Fatal(err)
			}
			hello := lnp.Hello2{User: "alice", Method: lnp.MethodPassword, MaxBlock: lnp.DefaultBlockSize}.AppendBody(nil)
			c, err := a.StartLNP(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if err := change.do(a, store); err != nil {
				t.Fatal(err)
			}
			ch := lnp.Challenge{Nonce: c.Nonce, Salt: c.Salt, KDF: lnp.KDF{Memory: c.KDF.Memory, Time: c.KDF.Time, Threads: c.KDF.Threads}}
			am := lnp.AuthMessage(hello, ch.AppendBody(nil), bytes.Repeat([]byte{3}, 32))
			k := lnp.DeriveKeys(lnp.SaltedKey("pw", ch.Salt, ch.KDF))
			if _, err := a.FinishLNP(ctx, c, am, k.ClientProof(am), testAddr); larder.ErrorCode(err) != change.want {
				t.Errorf("the old password's proof after the change: got %v, want code %s", err, change.want)
			}
		})
	}
}
