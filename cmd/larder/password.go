package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxPassword bounds the password line read from stdin, so that a file
// passed by mistake is not read whole.
const maxPassword = 4096

// readPassword returns the password from, in order: the first line of
// stdin if fromStdin, the environment variable LARDER_PASSWORD, or a prompt
// on the terminal without echo, asked twice if confirm. who names the
// account in the prompt. The password is never printed.
func readPassword(ctx context.Context, env *Env, fromStdin bool, who string, confirm bool) (string, error) {
	in := passwordInput{envVar: "LARDER_PASSWORD", prompt: fmt.Sprintf("Password for %s: ", who), confirm: confirm}
	if fromStdin {
		in.stdin = bufio.NewReader(io.LimitReader(env.Stdin, maxPassword+2))
	}
	return in.read(ctx, env)
}

// passwordInput says where one password comes from.
type passwordInput struct {
	stdin   *bufio.Reader // the next line of this, if set
	envVar  string        // else this environment variable, if set
	prompt  string        // else a prompt on the terminal
	confirm bool          // ask twice on the terminal; refuse an empty password
}

// read returns the password from the first of in's sources that has one.
func (in passwordInput) read(ctx context.Context, env *Env) (string, error) {
	var pw string
	switch {
	case in.stdin != nil:
		line, err := in.stdin.ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		if err == io.EOF && line == "" {
			return "", errors.New("--password-stdin: stdin is empty")
		}
		pw = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if len(pw) > maxPassword {
			return "", fmt.Errorf("--password-stdin: a line is longer than %d bytes", maxPassword)
		}
	case env.Getenv(in.envVar) != "":
		pw = env.Getenv(in.envVar)
	default:
		fd, ok := terminalFd(env.Stdin)
		if !ok {
			return "", fmt.Errorf("no password: stdin is not a terminal to ask on; use --password-stdin or set %s", in.envVar)
		}
		var err error
		if pw, err = prompt(ctx, env, fd, in.prompt); err != nil {
			return "", err
		}
		if in.confirm && pw != "" {
			again, err := prompt(ctx, env, fd, "Again, to confirm: ")
			if err != nil {
				return "", err
			}
			if again != pw {
				return "", errors.New("the passwords do not match")
			}
		}
	}
	if in.confirm && pw == "" {
		return "", errors.New("refusing an empty password")
	}
	return pw, nil
}

// terminalFd returns the file descriptor of r if r is a terminal.
func terminalFd(r any) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// prompt asks on the terminal fd without echo. Ctrl-C does not interrupt
// a blocked read (main catches SIGINT to cancel ctx instead of dying), so
// the read runs in a goroutine: on cancellation prompt restores the
// terminal's echo and returns, leaving the goroutine blocked in a read
// until the process exits a moment later.
func prompt(ctx context.Context, env *Env, fd int, text string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	fmt.Fprint(env.Stderr, text)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(env.Stderr)
		if r.err != nil {
			return "", fmt.Errorf("reading the password: %w", r.err)
		}
		return string(r.b), nil
	case <-ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(env.Stderr)
		return "", ctx.Err()
	}
}
