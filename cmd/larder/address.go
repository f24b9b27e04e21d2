package main

import (
	"net"
	"os"
	"strings"

	"github.com/larderfs/larder/internal/clientconf"
)

// This file is the one place where a command's arguments name a server:
// NAME:PATH for a remote that 'larder remote add' saved, and
// USER@HOST:PORT:PATH for one typed out, as scp and rclone write them.
// The commands hand their positional arguments to lnpFlags.addressed and
// get back the bare paths; lnpFlags.target then connects where they
// pointed.

// defaultCoursePort is the course protocol's usual port, which a remote
// without --course-server uses on its server's host.
const defaultCoursePort = "23456"

// address is the server that a command's arguments or --remote named.
type address struct {
	// spelled is how the user wrote it: NAME, or USER@HOST:PORT.
	spelled string
	// name is the remote's name; "" for USER@HOST:PORT.
	name   string
	remote clientconf.Remote
}

// same reports whether a and b name one server and account, however
// spelled: a remote and its server typed out are one.
func (a *address) same(b *address) bool {
	return a.remote.User == b.remote.User && clientconf.ServerKey(a.remote.Server) == clientconf.ServerKey(b.remote.Server)
}

// courseServer returns the address of the course protocol of a: the
// remote's, else its server's host on the usual port.
func (a *address) courseServer() string {
	if a.remote.CourseServer != "" {
		return a.remote.CourseServer
	}
	host, _, _ := net.SplitHostPort(a.remote.Server)
	return net.JoinHostPort(host, defaultCoursePort)
}

// splitRemote cuts arg into the server part and the path, as scp does: a
// ':' before any '/' ends the server part, so that "work:notes.txt" is on
// the remote work, while "/a:b" and "./a:b" are plain paths. The ':'s
// of an IPv6 address in brackets (alice@[::1]:23457:/x, and [::1]:… typed
// without its user, which parseAddress then refuses) do not count.
func splitRemote(arg string) (prefix, path string, ok bool) {
	i := 0
	open := strings.Index(arg, "@[")
	if open >= 0 {
		open++
	} else if strings.HasPrefix(arg, "[") {
		open = 0
	}
	if open >= 0 {
		if end := strings.IndexByte(arg[open:], ']'); end >= 0 {
			i = open + end
		}
	}
	colon := strings.IndexByte(arg[i:], ':')
	if colon < 0 {
		return "", arg, false
	}
	colon += i
	if slash := strings.IndexByte(arg, '/'); slash >= 0 && slash < colon {
		return "", arg, false
	}
	return arg[:colon], arg[colon+1:], true
}

// parseAddress returns the server that prefix, the part of an argument
// before its ':', names, and the rest of the path after a port
// (USER@HOST:PORT:PATH).
func parseAddress(env *Env, prefix, rest, arg string) (*address, string, error) {
	if at := strings.LastIndexByte(prefix, '@'); at >= 0 {
		// USER@HOST:PATH or USER@HOST:PORT:PATH; a username may hold
		// an '@', a host may not.
		user, hostPort := prefix[:at], prefix[at+1:]
		port, path, hasPort := strings.Cut(rest, ":")
		if !hasPort || port == "" || strings.Trim(port, "0123456789") != "" {
			port, path = defaultLNPPort(), rest
		}
		host := strings.TrimSuffix(strings.TrimPrefix(hostPort, "["), "]")
		server, err := serverAddr(net.JoinHostPort(host, port), defaultLNPServer)
		if err != nil || user == "" {
			return nil, "", usageError("bad address %q: want NAME:PATH for a remote ('larder remote list'), or USER@HOST:PORT:PATH", arg)
		}
		return &address{spelled: user + "@" + server, remote: clientconf.Remote{Server: server, User: user}}, path, nil
	}
	a, err := lookupRemote(env, prefix, arg)
	if err != nil && looksTypedOut(prefix, rest) {
		return nil, "", usageError("bad address %q: a server typed out needs the user too: USER@%s:%s (or save it with 'larder remote add NAME %s:PORT' and write NAME:PATH)",
			arg, prefix, rest, prefix)
	}
	return a, rest, err
}

// looksTypedOut reports whether prefix:rest, not a remote's name, is a
// server typed out without its user: a host in brackets, or a name
// followed by a port (HOST:PORT:PATH).
func looksTypedOut(prefix, rest string) bool {
	if strings.HasPrefix(prefix, "[") {
		return true
	}
	port, _, ok := strings.Cut(rest, ":")
	return ok && port != "" && strings.Trim(port, "0123456789") == ""
}

// lookupRemote returns the remote called name; arg is the argument that
// named it, for the error. An unknown name is refused with the list of
// the known ones.
func lookupRemote(env *Env, name, arg string) (*address, error) {
	conf, err := config(env)
	if err != nil {
		return nil, err
	}
	store := conf.Remotes()
	rem, ok, err := store.Lookup(name)
	if err != nil {
		return nil, err
	}
	if ok {
		return &address{spelled: name, name: name, remote: rem}, nil
	}
	names, _ := store.Names()
	known := "none yet: 'larder remote add NAME HOST:PORT' saves one"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	if arg == "" {
		return nil, usageError("unknown remote %q; the remotes are: %s", name, known)
	}
	return nil, usageError("unknown remote %q in %q; the remotes are: %s (a path on the server with a ':' before any '/' is written with a leading '/': /%s)",
		name, arg, known, arg)
}

// addressed resolves the server part of the positional arguments pos
// from index first on (those before it are local files): each may be
// NAME:PATH or USER@HOST:PORT:PATH, and all that have one must name the
// same server, which the command then connects to (see target). It
// returns pos with the bare paths; "NAME:" alone is the top of the space,
// "/". A local argument that looks like a remote's address and is no
// local file is refused, as the arguments are probably the wrong way
// round.
func (f *lnpFlags) addressed(env *Env, cmd string, pos []string, first int) ([]string, error) {
	out := make([]string, len(pos))
	copy(out, pos)
	for i, arg := range pos {
		prefix, rest, ok := splitRemote(arg)
		if !ok {
			continue
		}
		if i < first {
			if _, err := os.Lstat(arg); err == nil || strings.Contains(prefix, "@") {
				continue
			}
			if a, _, err := parseAddress(env, prefix, rest, arg); err == nil {
				return nil, usageError("%s: %s is on the remote %s, but this argument is a file on this machine, and there is none of that name; "+
					"the server's paths come after the local ones (write ./%s for a local file of that name)", cmd, arg, a.spelled, arg)
			}
			continue
		}
		if prefix == "" {
			return nil, usageError("%s: %q names no remote before its ':'; a path on the server with a ':' before any '/' is written with a leading '/': /%s", cmd, arg, arg)
		}
		a, path, err := parseAddress(env, prefix, rest, arg)
		if err != nil {
			return nil, err
		}
		if f.addr != nil && !f.addr.same(a) {
			return nil, usageError("%s: %s and %s name two servers; a command works on one", cmd, f.addr.spelled, a.spelled)
		}
		f.addr = a
		if path == "" {
			path = "/"
		}
		out[i] = path
	}
	return out, f.checkAddress(env)
}

// checkAddress resolves --remote, and refuses a server named twice:
// by --server and by a remote.
func (f *lnpFlags) checkAddress(env *Env) error {
	if f.remoteName != "" && (f.addr == nil || f.addr.name != f.remoteName) {
		a, err := lookupRemote(env, f.remoteName, "")
		if err != nil {
			return err
		}
		if f.addr != nil {
			return usageError("--remote %s and %s name two servers; a command works on one", f.remoteName, f.addr.spelled)
		}
		f.addr = a
	}
	if f.addr != nil && f.set["server"] {
		return usageError("--server and %s both name the server: give one", f.addr.spelled)
	}
	return nil
}

// defaultLNPPort is the port of defaultLNPServer.
func defaultLNPPort() string {
	_, port, _ := net.SplitHostPort(defaultLNPServer)
	return port
}
