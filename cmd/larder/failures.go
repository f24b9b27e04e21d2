package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// A failure is one kind of error a larder command can end with: how it is
// recognised, the exit code it gives, and how it is told to the user.
// failures is the one table of them; ExitCode and Message both read it,
// and a test checks the README's exit-code table against it.
type failure struct {
	// what names the failure in the README's exit-code table.
	what string
	exit int
	// text, if set, replaces the server's own message for a status: the
	// course server's texts are the reference server's wording
	// ("Signature hashes do not match for alice.").
	text string
	// advice says what to do; it is added to the message unless the
	// command added a more precise hint (*hintError).
	advice string
	match  func(err error) bool
}

// failures lists the failures; the first that matches an error is its
// failure. An error that none matches exits 1 as it is.
var failures = []failure{
	{what: "the command line is wrong (an unknown flag or command, a missing argument, a bad address)", exit: exitUsage,
		match: isType[*UsageError]},
	{what: "interrupted (Ctrl-C, SIGTERM)", exit: exitInterrupt, text: "interrupted",
		match: func(err error) bool { return errors.Is(err, context.Canceled) }},
	{what: "the server's certificate is not the one pinned for it", exit: exitDenied,
		match: isType[*tlsconf.CertChangedError]},
	{what: "the course server refused a registration (BAD_REQUEST: registration is closed, or the name is not allowed)", exit: exitDenied,
		advice: "ask the server's administrator for an account",
		match:  isType[*registrationRefused]},
	{what: "what answered is not a course-protocol server (an HTTP server, a TLS port: the wrong port)", exit: exitNetwork,
		advice: "check the port: larder serves the course protocol on 23456 and LNP/1 on 23457 unless told otherwise",
		match:  func(err error) bool { return errors.Is(err, client.ErrNotCourse) }},
	{what: "what answered does not speak TLS (the course port, or a server run with --insecure-plaintext-native)", exit: exitNetwork,
		advice: "check the port: larder serves LNP/1 on 23457 and the course protocol on 23456 unless told otherwise",
		match:  func(err error) bool { return errors.Is(err, errNotTLS) }},
	{what: "integrity: the server's reply failed a check; nothing that failed was kept in a file (to stdout, a device or a FIFO, get writes as it receives: what was written is not the file)", exit: exitIntegrity,
		advice: "try again; if it fails again, the server's copy or the path to it is damaged",
		match:  func(err error) bool { return errors.Is(err, client.ErrIntegrity) }},

	{what: "a path on the server, or a local name put makes one of, that is not UTF-8 text (LNP/1 paths are)", exit: exitNotFound,
		match: func(err error) bool { return errors.Is(err, client.ErrPathNotUTF8) }},

	lnpFailure(lnp.StatusNotFound, "no such file or folder", exitNotFound, "", "check the path; 'larder ls' lists your files, 'larder ls /shared' the course protocol's"),
	lnpFailure(lnp.StatusBadRequest, "a path that can never name a file, or a request the server refuses as bad", exitNotFound, "", ""),
	lnpFailure(lnp.StatusInvalidLogin, "unknown user or wrong password (LNP/1 does not tell which)", exitDenied, "", "check --user and the password"),
	lnpFailure(lnp.StatusDenied, "not yours to change (the read-only shared area, a file the server may not read), or registration is closed", exitDenied, "", ""),
	lnpFailure(lnp.StatusThrottled, "too many failed logins", exitDenied, "", "wait a minute and try again"),
	lnpFailure(lnp.StatusHashMismatch, "the server found an upload's block or whole file wrong", exitIntegrity, "", ""),
	lnpFailure(lnp.StatusQuotaExceeded, "the account's byte or file quota would be exceeded; unfinished uploads count", exitQuota, "", quotaHint),
	lnpFailure(lnp.StatusNoSpace, "the server keeps its last free disk space", exitNoSpace, "", "retry later, or ask the server's administrator"),
	lnpFailure(lnp.StatusConflict, "the target exists, a folder is not empty, an upload of that path is in progress, or its folder's removal is not finished", exitFailure, "", ""),
	lnpFailure(lnp.StatusBusy, "the server is busy", exitFailure, "", "retry in a moment"),
	lnpFailure(lnp.StatusOther, "the server failed", exitFailure, "", "retry later; if it persists, tell the server's administrator"),
	lnpFailure(lnp.StatusMalformed, "the server could not parse the request", exitFailure, "", "client and server disagree on LNP/1: update the client or tell the server's administrator"),
	lnpFailure(lnp.StatusVersion, "the server speaks another version of LNP/1", exitFailure, "", "update the client or the server"),

	{what: "the server closed the connection in the middle", exit: exitNetwork,
		advice: "the server may have restarted or ended an idle session; run the command again",
		match:  func(err error) bool { return errors.Is(err, errServerClosed) }},

	courseFailure(course.StatusUserMissing, "no account of that name", exitDenied,
		"the server has no account of that name", "check --user, or register first ('larder register')"),
	courseFailure(course.StatusInvalidLogin, "wrong password", exitDenied,
		"the server refused the password", "check the password; if you registered from another client, pass the salt it used (--salt)"),
	courseFailure(course.StatusUserExists, "the name is taken", exitDenied, "", "choose another name with --user"),
	courseFailure(course.StatusBadRequest, "no such file, or a path the server refuses (a folder, \"..\", unreadable)", exitNotFound, "",
		"check PATH: it is relative to the folder the server serves"),
	courseFailure(course.StatusOther, "the server failed, or is busy", exitFailure, "", "retry later; if it persists, tell the server's administrator"),
	courseFailure(course.StatusMalformed, "the server could not parse the request", exitFailure, "", ""),

	{what: "a local file to read does not exist", exit: exitNotFound,
		match: func(err error) bool { return isLocal(err, fs.ErrNotExist) }},
	{what: "a local file may not be read or written", exit: exitDenied,
		match: func(err error) bool { return isLocal(err, fs.ErrPermission) }},

	{what: "network: nothing answers at the address", exit: exitNetwork,
		advice: "is the server running, and is the port right? ('larder serve' prints its addresses)",
		match:  func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
	{what: "network: no such host", exit: exitNetwork, advice: "check the host name",
		match: isType[*net.DNSError]},
	{what: "network: timed out", exit: exitNetwork,
		advice: "the server or the network is slow or unreachable; --connect-timeout, --idle-timeout and --timeout set the limits",
		match: func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
		}},
	// Not errors.As(err, new(net.Error)): every syscall.Errno is one, a
	// full disk included.
	{what: "network: the connection failed or was reset", exit: exitNetwork,
		match: func(err error) bool {
			return isType[*net.OpError](err) || errors.Is(err, syscall.ECONNRESET) ||
				errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
		}},
}

// anythingElse is what the exit-code table says of the errors no failure
// matches.
const anythingElse = "anything else; the message says what"

func isType[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

func lnpFailure(s lnp.Status, what string, exit int, text, advice string) failure {
	return failure{what: "LNP/1 " + s.String() + ": " + what, exit: exit, text: text, advice: advice,
		match: func(err error) bool { st, ok := lnpStatus(err); return ok && st == s }}
}

func courseFailure(s course.Status, what string, exit int, text, advice string) failure {
	return failure{what: "course " + s.String() + ": " + what, exit: exit, text: text, advice: advice,
		match: func(err error) bool {
			e, ok := errors.AsType[*client.StatusError](err)
			return ok && e.Status == s
		}}
}

// failureOf returns the failure of err, or nil.
func failureOf(err error) *failure {
	for i := range failures {
		if failures[i].match(err) {
			return &failures[i]
		}
	}
	return nil
}

// ExitCode returns the exit code for err, the error of Run.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	if f := failureOf(err); f != nil {
		return f.exit
	}
	return exitFailure
}

// Message returns err as main prints it: the server's statuses in plain
// words, without the client package's prefixes, and what to do; with
// whatever a terminal would act on rather than show escaped.
func Message(err error) string { return terminalSafe(message(err)) }

func message(err error) string {
	msg := err.Error()
	f := failureOf(err)
	if f == nil {
		return strings.TrimPrefix(msg, "larder: ")
	}
	if f.exit == exitInterrupt {
		return f.text
	}
	// A status of the server: its own message, or the table's, in place
	// of the client's "client: the server replied STATUS: …".
	var status error
	var said string
	if e, ok := errors.AsType[*client.LNPError](err); ok {
		status, said = e, e.Message
	} else if e, ok := errors.AsType[*client.StatusError](err); ok {
		status, said = e, e.Message
	}
	if status != nil {
		plain := said
		if f.text != "" {
			plain = f.text
		}
		if plain == "" {
			_, plain, _ = strings.Cut(f.what, ": ")
		}
		msg = strings.Replace(msg, status.Error(), plain, 1)
	}
	msg = strings.TrimPrefix(msg, "client: ")
	if f.advice != "" && !isType[*hintError](err) {
		msg += " (" + f.advice + ")"
	}
	return strings.TrimPrefix(msg, "larder: ")
}

// registrationRefused is a course server's BAD_REQUEST to a registration:
// the account was not made, and no flag of the client can change that.
type registrationRefused struct{ err error }

func (e *registrationRefused) Error() string { return "registration refused: " + e.err.Error() }
func (e *registrationRefused) Unwrap() error { return e.err }

// localError is a local file that a command could not open.
type localError struct {
	what string // e.g. "put: cannot read"
	err  error
}

func (e *localError) Error() string { return fmt.Sprintf("%s: %v", e.what, e.err) }
func (e *localError) Unwrap() error { return e.err }

// isLocal reports whether err is a *localError for target.
func isLocal(err, target error) bool {
	e, ok := errors.AsType[*localError](err)
	return ok && errors.Is(e.err, target)
}

// exitCodeTable returns the exit-code table of the README, made from
// failures.
func exitCodeTable() string {
	byCode := map[int][]string{exitOK: {"success (or -h, help)"}}
	codes := []int{exitOK}
	for _, f := range failures {
		if byCode[f.exit] == nil {
			codes = append(codes, f.exit)
		}
		byCode[f.exit] = append(byCode[f.exit], f.what)
	}
	if byCode[exitFailure] == nil {
		codes = append(codes, exitFailure)
	}
	byCode[exitFailure] = append(byCode[exitFailure], anythingElse)
	slices.Sort(codes)
	var b strings.Builder
	b.WriteString("| exit | when |\n|---|---|\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "| %d | %s |\n", c, strings.Join(byCode[c], "<br>"))
	}
	return b.String()
}

// terminalSafe escapes, as Go would quote them, the characters of s
// that a terminal acts on (escape sequences, other controls but newline
// and tab, bidirectional overrides, line separators) and bytes that are
// not UTF-8. Most names in messages are quoted where they are made; this
// catches those that are not, such as a path read from a tampered
// configuration file inside an error of the os package.
func terminalSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
