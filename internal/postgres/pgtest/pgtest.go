// Package pgtest gives tests a database of their own on a real PostgreSQL
// server, or skips them, saying why, when there is none.
//
// The server is named by the environment variable LARDER_TEST_POSTGRES, a
// URL whose user may create databases, such as
//
//	postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable
//
// .ci/run starts a throwaway server and sets it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar is the environment variable that names the test server.
const EnvVar = "LARDER_TEST_POSTGRES"

// timeout bounds each administrative step: connecting, creating and
// dropping a database.
const timeout = 30 * time.Second

// URL creates a new, empty database on the test server, drops it when t
// and its subtests have finished (disconnecting whoever is still
// connected), and returns its URL. Tests that use one each can run in
// parallel. If EnvVar is unset or its server cannot be reached, URL skips
// t with the reason.
//
// The database is UTF8, as larder requires, whatever the server's default;
// its default collation is ICU's en-US where the server has ICU, so that a
// query that sorts names by the database's collation instead of bytes fails
// the tests.
func URL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvVar)
	if admin == "" {
		t.Skipf("no PostgreSQL to test against: %s is not set (.ci/run starts a server and sets it)", EnvVar)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		// pgx's messages name the host, port, user and database, never
		// the password.
		t.Skipf("no PostgreSQL to test against: %s is set, but: %v", EnvVar, err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 8)
	rand.Read(b)
	name := "larder_test_" + hex.EncodeToString(b)
	// A linguistic default collation, as production databases mostly
	// have, sorts "a" < "B" < "b": byte order has to come from the schema.
	// ICU locales need PostgreSQL 15 built with ICU; elsewhere, libc's C.
	create := `CREATE DATABASE ` + name + ` TEMPLATE template0 ENCODING 'UTF8'`
	if _, err := conn.Exec(ctx, create+` LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`); err != nil {
		t.Logf("pgtest: database %s with the C collation, as the server has no ICU: %v", name, err)
		if _, err := conn.Exec(ctx, create+` LOCALE 'C'`); err != nil {
			t.Fatalf("pgtest: create database %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase returns connString with its database replaced by name.
func withDatabase(t testing.TB, connString, name string) string {
	t.Helper()
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			// pgx.Connect parsed it, so this is unexpected; do not print
			// the string, which may hold a password.
			t.Fatalf("pgtest: %s does not parse as a URL", EnvVar)
		}
		u.Path, u.RawPath = "/"+name, ""
		q := u.Query()
		q.Del("dbname") // it would override the path
		u.RawQuery = q.Encode()
		return u.String()
	}
	// A keyword/value string: the last setting of a keyword wins.
	return connString + " dbname=" + name
}

// SetAllowConnections lets the database of url take connections, or
// refuses them and ends those it has: PostgreSQL down, for the clients of
// that database only.
func SetAllowConnections(t testing.TB, url string, allow bool) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// From the server's admin database, as the test's may refuse us.
	admin, err := pgx.Connect(ctx, os.Getenv(EnvVar))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := pgx.Identifier{cfg.Database}.Sanitize()
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %v`, name, allow)); err != nil {
		t.Fatal(err)
	}
	if !allow {
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, cfg.Database); err != nil {
			t.Fatal(err)
		}
	}
}
