package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// Socket activation: under systemd, larder serve may be given its
// listening sockets (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) by socket
// units (dist/larder.socket, dist/larder-native.socket), instead of
// opening them: the ports can then be privileged, or bound before larder
// starts. Each socket is named by its unit's FileDescriptorName, which
// says what it serves; a socket given replaces the address of its
// setting, and a setting without one listens as configured.

// The names of the sockets larder takes, and the settings they replace.
var socketNames = []struct{ name, setting string }{
	{"course", "listen"},
	{"native", "native-listen"},
	{"metrics", "metrics-listen"},
}

// inheritedListeners returns the sockets the service manager passed,
// by name, or none if it passed none. A socket of an unknown name or
// none, a name given twice, and a socket that is not a TCP listener are
// errors that say what to change; so is a socket given for a protocol
// that the configuration turns off. The environment is cleared, so that
// nothing larder starts inherits it.
func inheritedListeners(cfg *ServeConfig, logger *slog.Logger) (map[string]net.Listener, error) {
	fds, pid := os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID")
	if fds == "" {
		return nil, nil
	}
	if pid != strconv.Itoa(os.Getpid()) {
		// For another process, which let them leak to its children:
		// sd_listen_fds(3) ignores them too.
		logger.Warn("socket activation: LISTEN_FDS is set, but LISTEN_PID is not this process's; the sockets are not larder's, and are ignored",
			"LISTEN_FDS", fds, "LISTEN_PID", pid, "pid", os.Getpid())
		activation.Files(true) // clears the environment
		return nil, nil
	}
	fdNames := os.Getenv("LISTEN_FDNAMES")
	named := fdNames != ""
	files := activation.Files(true)
	if len(files) == 0 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_FDS %q: want the number of sockets passed", fds)
	}
	if n := strings.Count(fdNames, ":") + 1; named && n != len(files) {
		// As sd_listen_fds_with_names(3) does: which name goes with
		// which socket is not known.
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("socket activation: LISTEN_FDS says %d socket(s) were passed, but LISTEN_FDNAMES %q names %d: "+
			"the service manager's environment does not add up", len(files), fdNames, n)
	}
	lns := map[string]net.Listener{}
	var err error
	for i, f := range files {
		if err == nil {
			err = takeSocket(lns, f, 3+i, named)
		}
		f.Close() // net.FileListener made a copy
	}
	if err == nil {
		err = checkSockets(cfg, lns)
	}
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	return lns, nil
}

// takeSocket adds the listener of f, file descriptor fd, to lns under
// its name.
func takeSocket(lns map[string]net.Listener, f *os.File, fd int, named bool) error {
	name := f.Name()
	if !slices.ContainsFunc(socketNames, func(s struct{ name, setting string }) bool { return s.name == name }) {
		if !named {
			return fmt.Errorf("socket activation: LISTEN_FDNAMES is not set, so the %s socket(s) passed have no names: "+
				"give each socket unit FileDescriptorName=course, native or metrics (dist/larder.socket)", os.Getenv("LISTEN_FDS"))
		}
		return fmt.Errorf("socket activation: the socket passed as file descriptor %d is named %q; larder takes sockets named %s "+
			"(FileDescriptorName= of the socket unit)", fd, name, socketList())
	}
	if lns[name] != nil {
		return fmt.Errorf("socket activation: two sockets are named %q: larder serves one of each; give each socket unit a name of its own", name)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("socket activation: the socket named %q (file descriptor %d) is not a listening stream socket (ListenStream= in its unit): %w", name, fd, err)
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		ln.Close()
		return fmt.Errorf("socket activation: the socket named %q is on %s, not TCP: give its unit ListenStream=HOST:PORT", name, ln.Addr())
	}
	lns[name] = ln
	return nil
}

// checkSockets refuses a socket for a protocol that cfg turns off.
func checkSockets(cfg *ServeConfig, lns map[string]net.Listener) error {
	for _, s := range []struct{ name, setting, addr string }{
		{"course", "listen", cfg.Listen}, {"native", "native-listen", cfg.LNPListen},
	} {
		if lns[s.name] != nil && s.addr == "off" {
			return fmt.Errorf("socket activation: a socket named %q was passed, but %s is off: remove its socket unit, or turn %s on", s.name, s.setting, s.setting)
		}
	}
	return nil
}

// listen returns the socket named name that the service manager passed,
// else a new one on addr.
func (m *Main) listen(ctx context.Context, lc net.ListenConfig, name, addr string) (net.Listener, error) {
	if ln := m.Listeners[name]; ln != nil {
		return ln, nil
	}
	return lc.Listen(ctx, "tcp", addr)
}

func socketList() string {
	var names []string
	for _, s := range socketNames {
		names = append(names, s.name+" ("+s.setting+")")
	}
	return strings.Join(names, ", ")
}
