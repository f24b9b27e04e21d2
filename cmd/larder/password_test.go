package main

import (
	"context"
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		fromStdin bool
		envPw     string
		confirm   bool
		want      string
		err       string
	}{
		{"stdin first line", "s3cret\nnext\n", true, "env", false, "s3cret", ""},
		{"stdin CRLF", "s3cret\r\n", true, "", false, "s3cret", ""},
		{"stdin no newline", "s3cret", true, "", false, "s3cret", ""},
		{"stdin empty", "", true, "", false, "", "stdin is empty"},
		{"stdin too long", strings.Repeat("x", 5000), true, "", false, "", "longer than"},
		{"env", "", false, "from env", true, "from env", ""},
		{"empty for register", "\n", true, "", true, "", "empty password"},
		{"empty for get", "\n", true, "", false, "", ""},
		{"no source", "", false, "", false, "", "not a terminal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, stderr := testEnv(t, "x:1", "LARDER_PASSWORD", tt.envPw)
			env.Stdin = strings.NewReader(tt.stdin)
			got, err := readPassword(context.Background(), env, tt.fromStdin, "alice@x:1", tt.confirm)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %q, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			if tt.want != "" && strings.Contains(stderr.String(), tt.want) {
				t.Error("the password was printed")
			}
		})
	}
}
