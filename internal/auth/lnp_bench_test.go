package auth_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// The server's work per login at the default policy (OWASP's minimum):
// the course signature's check (one argon2id), against the channel-bound
// login's (a lookup, an AES-GCM open and a few HMACs); and the client's,
// which pays the argon2id instead. docs/SECURITY.md quotes them.

func BenchmarkLoginSignature(b *testing.B) {
	ctx := context.Background()
	store, server := twoServers(b)
	_ = store
	a := server(auth.DefaultParams, nil)
	if _, err := a.Register(ctx, "alice", signature("pw")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		// A wrong signature: never cached, always one argon2id.
		a.LoginSignature(ctx, "alice", signature("wrong"), testAddr, true)
	}
}

func BenchmarkLoginChannelBound(b *testing.B) {
	ctx := context.Background()
	_, server := twoServers(b)
	a := server(auth.DefaultParams, nil)
	u, err := a.Register(ctx, "alice", signature("pw"))
	if err != nil {
		b.Fatal(err)
	}
	k := lnp.DeriveKeys(lnp.SaltedKey("pw", lnpSalt, lnp.KDF{Memory: auth.DefaultParams.Memory, Time: auth.DefaultParams.Time, Threads: auth.DefaultParams.Threads}))
	if err := a.EnrollLNP(ctx, u, lnpSalt, auth.DefaultParams, auth.LNPKeys{StoredKey: k.StoredKey, ServerKey: k.ServerKey}, testAddr); err != nil {
		b.Fatal(err)
	}
	hello := lnp.Hello2{User: "alice", Method: lnp.MethodPassword}.AppendBody(nil)
	for b.Loop() {
		c, err := a.StartLNP(ctx, "alice")
		if err != nil {
			b.Fatal(err)
		}
		ch := lnp.Challenge{Nonce: c.Nonce, Salt: c.Salt, KDF: lnp.KDF{Memory: c.KDF.Memory, Time: c.KDF.Time, Threads: c.KDF.Threads}}
		am := lnp.AuthMessage(hello, ch.AppendBody(nil), bytes.Repeat([]byte{3}, 32))
		b.StopTimer()
		proof := k.ClientProof(am)
		b.StartTimer()
		if _, err := a.FinishLNP(ctx, c, am, proof, testAddr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientSaltedKey(b *testing.B) {
	k := lnp.KDF{Memory: auth.DefaultParams.Memory, Time: auth.DefaultParams.Time, Threads: auth.DefaultParams.Threads}
	for b.Loop() {
		lnp.SaltedKey("pw", lnpSalt, k)
	}
}
