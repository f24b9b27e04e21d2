package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestTarget(t *testing.T) {
	for _, tc := range []struct{ connString, want string }{
		{"postgres://alice:pw@db.example:6543/larder?sslmode=disable", "postgres://alice@db.example:6543/larder"},
		{"postgres://alice@127.0.0.1/larder", "postgres://alice@127.0.0.1:5432/larder"},
		{"postgres://alice:pw@[::1]:5433/larder", "postgres://alice@[::1]:5433/larder"},
		{"host=/run/postgresql user=alice password=pw dbname=larder", "postgres://alice@/larder?host=%2Frun%2Fpostgresql"},
	} {
		cfg, err := pgxpool.ParseConfig(tc.connString)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", tc.connString, err)
		}
		if got := target(cfg); got != tc.want {
			t.Errorf("target(%q): got %q, want %q", tc.connString, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	for _, tc := range []struct{ connString, msg, want string }{
		{"postgres://u:p%40ss@h/d", "bad `postgres://u:p%40ss@h/d` (p@ss)", "bad `postgres://u:xxxxx@h/d` (xxxxx)"},
		{"postgres://u@h/d?password=abc&sslpassword=def", "abc def", "xxxxx xxxxx"},
		{"host=h password='a b\\'c' dbname=d", "a b'c and a b\\'c", "xxxxx and xxxxx"},
		{"host=h password=secret", "password=secret", "password=xxxxx"},
		{"postgres://u:@h/d", "postgres://u:@h/d", "postgres://u:@h/d"},
		{"postgres://u:pw@h/d?options=a@b", "pw and pw@h/d?options=a", "xxxxx and xxxxx"},
		{"postgres://u:p@w@h/d", "p@w, or p", "xxxxx, or xxxxx"},
	} {
		if got := scrub(tc.msg, tc.connString); got != tc.want {
			t.Errorf("scrub(%q, %q): got %q, want %q", tc.msg, tc.connString, got, tc.want)
		}
	}
}
