package main

import (
	"bytes"
	"context"
	"sync"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/lnp"
)

// saltedKeys remembers the argon2id keys a command derived from its
// password, so that the further sessions of parallel transfers and of
// retries pay argon2id once: the server sends the same salt and cost
// until the credential changes. The keys live in the process only.
type saltedKeys struct {
	mu   sync.Mutex
	keys []savedKey
}

type savedKey struct {
	password string
	salt     []byte
	kdf      lnp.KDF
	key      [32]byte
}

// derive has the signature of client.LoginOptions.SaltedKey.
func (c *saltedKeys) derive(password string, salt []byte, k lnp.KDF) [32]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.keys {
		if s.password == password && s.kdf == k && bytes.Equal(s.salt, salt) {
			return s.key
		}
	}
	key := lnp.SaltedKey(password, salt, k)
	c.keys = append(c.keys, savedKey{password: password, salt: bytes.Clone(salt), kdf: k, key: key})
	return key
}

// passwordReopener returns the function that opens another session of
// t's account with password, which has logged in once already (so it is
// enrolled), for lnpSession.reopen.
func (f *lnpFlags) passwordReopener(env *Env, t lnpTarget, password string) func(context.Context) (*client.Session, error) {
	return func(ctx context.Context) (*client.Session, error) {
		conn, err := f.dialLNP(ctx, env, t)
		if err != nil {
			return nil, err
		}
		opts := mustLoginOptions(env, f.idleTimeout)
		opts.SaltedKey = f.keys.derive
		s, err := client.Login(ctx, conn, t.user, password, opts)
		return s, sessionError(err)
	}
}

// deviceReopener is passwordReopener for a session that logged in with
// the device credential d.
func (f *lnpFlags) deviceReopener(env *Env, t lnpTarget, d clientconf.Device) func(context.Context) (*client.Session, error) {
	return func(ctx context.Context) (*client.Session, error) {
		conn, err := f.dialLNP(ctx, env, t)
		if err != nil {
			return nil, err
		}
		opts := mustLoginOptions(env, f.idleTimeout)
		s, err := client.LoginDevice(ctx, conn, t.user, d.ID, d.Secret, opts.SessionOptions)
		return s, sessionError(err)
	}
}
