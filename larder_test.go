package larder_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/larderfs/larder"
)

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name string
		want string // substring of the error; "" for valid
	}{
		{"alice", ""},
		{"a", ""},
		{"0123456789abcdef", ""}, // 16 bytes
		{"ålice-ünïcø", ""},      // 15 bytes of UTF-8
		{"with space", ""},
		{"", "empty"},
		{"0123456789abcdefg", "17 bytes long"},
		{"ååååååååå", "18 bytes long"},
		{"bad\xffutf8", "not valid UTF-8"},
		{"tab\there", "control character U+0009"},
		{"nul\x00", "control character U+0000"},
		{"del\x7f", "control character U+007F"},
		{"c1\u0085", "control character U+0085"},
	}
	for _, tt := range tests {
		err := larder.ValidateUsername(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateUsername(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateUsername(%q) = %v, want an error containing %q", tt.name, err, tt.want)
		case tt.want != "" && larder.ErrorCode(err) != larder.EINVALID:
			t.Errorf("ValidateUsername(%q) code = %q, want EINVALID", tt.name, larder.ErrorCode(err))
		}
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	cause := errors.New("disk on fire at /var/lib/larder")
	domain := &larder.Error{Code: larder.ENOTFOUND, Message: "no such file", Err: cause}
	wrapped := fmt.Errorf("opening: %w", domain)
	tests := []struct {
		err     error
		code    string
		message string
		causeIs bool
	}{
		{nil, "", "", false},
		{cause, larder.EINTERNAL, "internal error", true},
		{domain, larder.ENOTFOUND, "no such file", true},
		{wrapped, larder.ENOTFOUND, "no such file", true},
	}
	for _, tt := range tests {
		if got := larder.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := larder.ErrorMessage(tt.err); got != tt.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
		}
		if got := errors.Is(tt.err, cause); got != tt.causeIs {
			t.Errorf("errors.Is(%v, cause) = %v, want %v", tt.err, got, tt.causeIs)
		}
	}
	// The client-safe message never carries the internal cause.
	if msg := larder.ErrorMessage(wrapped); strings.Contains(msg, "/var/lib") {
		t.Errorf("message %q leaks the internal cause", msg)
	}
}

// TestValidateNewName: names given to new accounts and files may hold
// no character that hides or disguises text (RFC 8264's classes): no
// control, format (bidirectional, zero-width), private-use, surrogate or
// unassigned code point, no separator but U+0020, and only in NFC.
func TestValidateNewName(t *testing.T) {
	tests := []struct {
		name string
		want string // substring of the error; "" for valid
	}{
		{"alice", ""},
		{"ålice-ünïcø", ""},
		{"with space", ""},
		{"report (final).pdf", ""},
		{"日本語.txt", ""},
		{"😀.png", ""},
		{"evil\u202egnp.exe", "U+202E"},
		{"rtl\u200fmark", "U+200F"},
		{"zero\u200bwidth", "U+200B"},
		{"bom\ufeff", "U+FEFF"},
		{"line\nbreak", "U+000A"},
		{"esc\x1b[31mred", "U+001B"},
		{"ls\u2028sep", "U+2028"},
		{"nb\u00a0space", "U+00A0"},
		{"private\ue000", "U+E000"},
		{"unassigned\U000e0080", "U+E0080"},
		{"cafe\u0301", "NFC"},
		{"\u3164", "U+3164"},               // Hangul filler: a name that shows as nothing
		{"a\u034fb", "U+034F"},             // combining grapheme joiner
		{"\u2764\ufe0f.png", ""},           // a variation selector, as emoji use it
		{"\U0001f600\u200d.png", "U+200D"}, // zero-width joiner
		{"a\xffb", "not valid UTF-8"},
		{"\xc3", "not valid UTF-8"},
		{"\xed\xa0\x80", "not valid UTF-8"}, // a surrogate, encoded
		{"a\ufffdb", "U+FFFD"},              // what a store lists a key that is not UTF-8 as
	}
	for _, tt := range tests {
		err := larder.ValidateNewName("name", tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateNewName(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateNewName(%q) = %v, want an error containing %q", tt.name, err, tt.want)
		case tt.want != "" && larder.ErrorCode(err) != larder.EINVALID:
			t.Errorf("ValidateNewName(%q) code = %q, want EINVALID", tt.name, larder.ErrorCode(err))
		case err != nil && strings.ContainsAny(err.Error(), "\u202e\n\x1b"):
			t.Errorf("ValidateNewName(%q) = %q: the message holds the character itself", tt.name, err)
		}
	}
	// A new username must also be a username; an existing one keeps
	// logging in (ValidateUsername stays as it was).
	if err := larder.ValidateNewUsername("evil\u202eab"); err == nil || !strings.Contains(err.Error(), "username") {
		t.Errorf("ValidateNewUsername of a bidi override: %v", err)
	}
	if err := larder.ValidateNewUsername("0123456789abcdefg"); err == nil {
		t.Error("ValidateNewUsername of a 17-byte name: no error")
	}
	if err := larder.ValidateUsername("evil\u202eab"); err != nil {
		t.Errorf("ValidateUsername of an existing name with a bidi override: %v", err)
	}
}
