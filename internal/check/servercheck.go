package check

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// checks lists the suite in the order it runs: the account first, since
// most checks log in with it.
func (s *serverRun) checks() []serverCheck {
	cs := []serverCheck{
		{id: "register.new", title: "a new user registers", required: true,
			why: "an empty body registers the user in the header; every other check logs in with this account",
			run: (*serverRun).registerNew},
		{id: "register.duplicate", title: "registering a taken name again", required: true,
			why: "a name belongs to whoever registered it first: the same request again must get USER_EXISTS, not a second account",
			run: func(s *serverRun, ctx context.Context) verdict {
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				return s.expectStatus(ctx, request(s.user, s.sig, ""), sendMode{}, course.StatusUserExists, nil)
			}},
		{id: "register.takeover", title: "registering a taken name with another password", required: true,
			why: "whatever the signature, a taken name is taken; otherwise anyone could replace another user's password",
			run: func(s *serverRun, ctx context.Context) verdict {
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				return s.expectStatus(ctx, request(s.user, larder.NewSignature("other", course.CourseSalt), ""), sendMode{}, course.StatusUserExists, nil)
			}},
		{id: "register.empty-name", title: "registering an empty username", required: true,
			why: "a username of 16 NUL bytes names nobody; the protocol answers it with BAD_REQUEST",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.expectRefusal(ctx, rawRequest(nil, s.sig, 0, nil), sendMode{}, course.StatusBadRequest, course.StatusMalformed)
			}},
		{id: "register.empty-password", title: "a user with an empty password registers and logs in", required: true,
			why: "the server sees only SHA-256(password ‖ salt), never the password: an empty password is a signature like any other",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.registerAndLogin(ctx, "chk-e-"+s.tag, larder.NewSignature("", course.CourseSalt))
			}},
		{id: "register.long-name", title: "a 16-byte username (no NUL in the field) registers and logs in", required: true,
			why: "a name that fills the field has no NUL terminator; a server that looks for one reads past the field",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.registerAndLogin(ctx, "chk-sixteen-"+s.tag[:4], s.sig)
			}},
		{id: "register.utf8-name", title: "a username with non-ASCII letters registers and logs in", required: true,
			why: "usernames are UTF-8; a name with multi-byte characters must be the same name at registration and at login",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.registerAndLogin(ctx, "ø-"+s.tag+"-é", s.sig)
			}},
		{id: "register.punctuation-name", title: "a username with a space and punctuation registers and logs in", required: false,
			why: "nothing in the protocol forbids them: a server that splits or trims names on spaces or dots logs in someone else, or no one",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.registerAndLogin(ctx, "c h.k-"+s.tag+"!", s.sig)
			}},
		{id: "register.nul-in-name", title: "a username field with bytes after its NUL padding", required: true,
			why:       `"bob\0x" must not become a user distinct from "bob": two names that print alike are an impersonation`,
			reference: `registers "name\0x" as a new user (status 1)`,
			run: func(s *serverRun, ctx context.Context) verdict {
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				name := append([]byte(s.user), 0, 'x')
				return s.expectRefusal(ctx, rawRequest(name, s.sig, 0, nil), sendMode{},
					course.StatusUserExists, course.StatusBadRequest, course.StatusMalformed)
			}},
		{id: "register.invalid-utf8", title: "a username that is not UTF-8", required: false,
			why:       "a name the server cannot decode is a bad request, answered as such (5 or 7), not an internal error",
			reference: "answers status 6 OTHER (a Python decoding exception)",
			run: func(s *serverRun, ctx context.Context) verdict {
				name := []byte("chk-\xff\xfe" + s.tag)
				return s.expectRefusal(ctx, rawRequest(name, s.sig, 0, nil), sendMode{}, course.StatusBadRequest, course.StatusMalformed)
			}},

		{id: "login.unknown-user", title: "retrieving as a user that never registered", required: true,
			why: "a retrieval by an unknown name gets USER_MISSING, and no file",
			run: func(s *serverRun, ctx context.Context) verdict {
				return s.expectStatus(ctx, request("chk-no-"+s.tag, s.sig, s.small.path), sendMode{}, course.StatusUserMissing, nil)
			}},
		{id: "login.wrong-signature", title: "retrieving with a wrong signature", required: true,
			why: "the signature is the password: a wrong one gets INVALID_LOGIN, and no file",
			run: func(s *serverRun, ctx context.Context) verdict {
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				return s.expectStatus(ctx, request(s.user, larder.NewSignature("wrong", course.CourseSalt), s.small.path), sendMode{}, course.StatusInvalidLogin, nil)
			}},
	}

	for _, f := range s.files {
		c := serverCheck{id: "get." + f.id, required: true, run: func(s *serverRun, ctx context.Context) verdict { return s.fileGet(ctx, f) }}
		switch f.id {
		case "tiny":
			c.title, c.why = "retrieving the handout's tiny.txt (30 bytes, one block)", "the smallest ordinary retrieval: one block whose hash is the total hash"
		case "hamlet":
			c.title, c.why = "retrieving the handout's hamlet.txt (196,746 bytes, 209 blocks)", "a file of many blocks: every block full but the last, each block's hash and the total hash right"
		case "empty":
			c.title, c.why = "retrieving an empty file", "an empty file is one block of length 0 whose hashes are SHA-256 of nothing; a server that sends no block leaves the client waiting or guessing"
			c.reference = "sends no block at all and closes"
		case "one-byte":
			c.title, c.why = "retrieving a 1-byte file", "the smallest payload"
		case "one-block":
			c.title, c.why = "retrieving a file of exactly 944 bytes", "exactly one full block, and no empty second block; clients that hash past their buffer fail here"
		case "one-block-plus-one":
			c.title, c.why = "retrieving a file of 945 bytes", "one full block and a 1-byte last one"
		case "binary":
			c.title, c.why = "retrieving a binary file (all byte values, NULs, CR, LF, not UTF-8)", "files are bytes: a server that reads them as text or as C strings corrupts them"
			c.reference = "reads files as text: answers status 6 OTHER for bytes that are not UTF-8, and turns CRLF into LF"
		case "large":
			c.title, c.why = "retrieving a 2 MiB file (2,222 blocks)", "a large reply: every block full but the last, in any order, nothing lost under load"
		}
		cs = append(cs, c)
	}

	cs = append(cs,
		serverCheck{id: "get.missing", title: "retrieving a file that does not exist", required: true,
			why: "a missing file is BAD_REQUEST with a message, not a crash, an empty file or silence",
			run: func(s *serverRun, ctx context.Context) verdict {
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				return s.expectStatus(ctx, request(s.user, s.sig, "larder-check-missing-"+s.tag+".txt"), sendMode{}, course.StatusBadRequest, nil)
			}},
		serverCheck{id: "get.folder", title: "retrieving a folder", required: true,
			why: "a folder is not a file: BAD_REQUEST, not its listing nor an internal error",
			run: func(s *serverRun, ctx context.Context) verdict {
				if s.dir == "" {
					return notApplicable("needs --files: the checker makes its own folder")
				}
				if !s.userOK {
					return notApplicable(needsAccount)
				}
				return s.expectStatus(ctx, request(s.user, s.sig, s.dir+"/folder"), sendMode{}, course.StatusBadRequest, nil)
			}},
		serverCheck{id: "get.leading-slash", title: "a path with a leading /", required: false,
			why: "the course's server strips one leading / and serves the path relative to its folder; clients may send it",
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				return s.expectStatus(ctx, request(s.user, s.sig, "/"+s.small.path), sendMode{}, course.StatusOK, s.small.data)
			}},
		serverCheck{id: "path.dotdot", title: "a path that climbs out of the served folder with ..", required: true,
			why:       "nothing outside the served folder may be reachable: ../ would hand out any file the server can read",
			reference: "serves files outside its folder",
			run:       (*serverRun).pathDotdot},
		serverCheck{id: "path.absolute", title: "an absolute path to a file outside the served folder", required: true,
			why:       "an absolute path must not reach the file system's root (after one leading / is stripped, //etc/passwd still is one)",
			reference: "serves files outside its folder",
			run:       (*serverRun).pathAbsolute},
		serverCheck{id: "path.symlink", title: "a symbolic link in the served folder that points outside", required: true,
			why:       "a link inside the folder must not lead out of it: anyone able to place one would read anything",
			reference: "follows the link",
			run:       (*serverRun).pathSymlink},
		serverCheck{id: "path.nul", title: "a path with a NUL byte in it", required: true,
			why: `C APIs cut a path at its NUL: "a.txt\0.png" must not be served as a.txt, nor crash the server`,
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				return s.refusedNotServed(ctx, request(s.user, s.sig, s.small.path+"\x00.x"), s.small.data)
			}},

		serverCheck{id: "malformed.short-header", title: "a request that ends inside its 52-byte header", required: true,
			why:       "a request that cannot be parsed gets MALFORMED, so that the client learns what it did wrong",
			reference: "answers status 6 OTHER (a Python exception), not 7",
			run: func(s *serverRun, ctx context.Context) verdict {
				req := request(s.user, s.sig, "")[:20]
				return s.expectStatus(ctx, req, sendMode{closeWrite: true}, course.StatusMalformed, nil)
			}},
		serverCheck{id: "malformed.length-larger", title: "a declared length larger than the body sent", required: true,
			why:       "a body cut short is MALFORMED, answered once; a second reply after it confuses every client",
			reference: "answers status 7 and then a second reply on the same connection",
			run: func(s *serverRun, ctx context.Context) verdict {
				body := []byte(s.small.path)
				req := rawRequest([]byte(s.user), s.sig, uint32(len(body)+50), body)
				return s.expectStatus(ctx, req, sendMode{closeWrite: true}, course.StatusMalformed, nil)
			}},
		serverCheck{id: "malformed.length-smaller", title: "a declared length smaller than the body sent", required: true,
			why: "the length field says where the body ends: the server reads exactly that many bytes (the path of a file) and ignores the bytes after them, whatever they are",
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				body := []byte(s.small.path + "-and-more")
				req := rawRequest([]byte(s.user), s.sig, uint32(len(s.small.path)), body)
				return s.expectStatus(ctx, req, sendMode{}, course.StatusOK, s.small.data)
			}},
		serverCheck{id: "malformed.huge-length", title: "a declared length of 4 GiB", required: true,
			why:       "no body is longer than 972 bytes: the server refuses at once, without reserving memory or waiting for 4 GiB",
			reference: "answers status 7 and then a second reply",
			run: func(s *serverRun, ctx context.Context) verdict {
				req := rawRequest([]byte(s.user), s.sig, 0xFFFFFFFF, []byte("tiny.txt"))
				return s.expectStatus(ctx, req, sendMode{}, course.StatusMalformed, nil)
			}},
		serverCheck{id: "malformed.over-max", title: "a body of 973 bytes, one more than a message allows", required: false,
			why:       "a whole message is at most 1,024 bytes (MSG_MAX): a longer one is MALFORMED",
			reference: "answers status 7 and then a second reply",
			run: func(s *serverRun, ctx context.Context) verdict {
				body := bytes.Repeat([]byte("a"), course.MaxBodySize+1)
				req := rawRequest([]byte(s.user), s.sig, uint32(len(body)), body)
				return s.expectStatus(ctx, req, sendMode{}, course.StatusMalformed, nil)
			}},
		serverCheck{id: "malformed.garbage", title: "an HTTP request instead of a course request", required: true,
			why:       "bytes that are not a request (here a web browser's) get one MALFORMED reply, not a crash or a hang",
			reference: "answers status 7 and then a second reply",
			run: func(s *serverRun, ctx context.Context) verdict {
				req := []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: larder-check\r\nAccept: */*\r\n\r\n")
				v := s.expectStatus(ctx, req, sendMode{}, course.StatusMalformed, nil)
				v.sent = fmt.Sprintf("%d bytes of an HTTP request: %s", len(req), hexPrefix(req, 24))
				return v
			}},
		serverCheck{id: "malformed.bytes-after-body", title: "128 NUL bytes after a retrieval's body", required: true,
			why: "student clients send a fixed path buffer after a length that counts only the path; the server ignores the rest and must not reset the connection (closing with unread input sends a reset that can destroy the reply)",
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				req := append(request(s.user, s.sig, s.small.path), make([]byte, 128)...)
				return s.expectStatus(ctx, req, sendMode{}, course.StatusOK, s.small.data)
			}},

		serverCheck{id: "conn.byte-at-a-time", title: "a request sent one byte per write", required: true,
			why:       "TCP is a stream: a request may arrive in any number of pieces; a server that parses its first recv fails real clients on real networks",
			reference: "a single recv(1024): answers status 6 OTHER",
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				v := s.expectStatus(ctx, request(s.user, s.sig, s.small.path), sendMode{byteDelay: 5 * time.Millisecond}, course.StatusOK, s.small.data)
				v.sent = "one byte per write, 5 ms apart: " + v.sent
				return v
			}},
		serverCheck{id: "conn.no-request", title: "connections closed without a request", required: true,
			why: "port scanners and health checks connect and leave; the server must shrug and go on serving",
			run: (*serverRun).noRequest},
		serverCheck{id: "conn.slow-client", title: "a stalled client does not stall another", required: true,
			why: "one client that sends half a header and waits must not keep the server from answering everyone else",
			run: (*serverRun).slowClient},
		serverCheck{id: "conn.many-clients", title: fmt.Sprintf("%d clients at once", s.cfg.Clients), required: true,
			why:       "a class of students fetches at the same time; every one of them must get the whole file, and connect at once: a connection that takes a second or more was dropped by a full listen backlog and retried",
			reference: "has a listen backlog of 5: when more clients connect at once than it accepts in time, some wait 1 s or more for a retried connection (it depends on timing; with a short --timeout they time out)",
			run:       (*serverRun).manyClients},
		serverCheck{id: "conn.still-serving", title: "the server still serves after all the above", required: true,
			why: "no earlier request may have crashed or wedged the server",
			run: func(s *serverRun, ctx context.Context) verdict {
				if why, ok := s.needFile(s.small); !ok {
					return notApplicable(why)
				}
				return s.expectStatus(ctx, request(s.user, s.sig, s.small.path), sendMode{}, course.StatusOK, s.small.data)
			}},
	)
	return cs
}

func (s *serverRun) registerNew(ctx context.Context) verdict {
	req := request(s.user, s.sig, "")
	v := verdict{sent: describeRequest(req), expected: "one reply, status 1 OK, then the close", outcome: Fail}
	r, err := exchange(ctx, s.cfg.Addr, req, sendMode{}, s.cfg.Timeout)
	if err != nil {
		s.connErr = err
		return v
	}
	v.got = r.describe()
	if r != nil && r.complete() && len(r.afterProblems()) == 0 && r.status == course.StatusOK {
		v.outcome, s.userOK = Pass, true
	}
	s.notCourse = r != nil && len(r.blocks) == 0
	return v
}

// registerAndLogin registers user with sig, then logs in with them (a
// retrieval of a missing file: BAD_REQUEST means the login worked).
func (s *serverRun) registerAndLogin(ctx context.Context, user string, sig larder.Signature) verdict {
	v := s.expectStatus(ctx, request(user, sig, ""), sendMode{}, course.StatusOK, nil)
	v.expected = "status 1 OK; then a login (retrieval of a missing file) answered 5 BAD_REQUEST, not 3 or 4"
	if v.outcome != Pass {
		return v
	}
	r, got := s.probeLogin(ctx, user, sig)
	v.got += "; login: " + got
	if r == nil || !r.complete() || r.status != course.StatusBadRequest {
		v.outcome = Fail
	}
	return v
}

// refusedNotServed is the verdict on a request that must not be served:
// any refusal passes, the file's bytes fail.
func (s *serverRun) refusedNotServed(ctx context.Context, req []byte, secret []byte) verdict {
	v := verdict{sent: describeRequest(req), expected: "a refusal (status 5 BAD_REQUEST), not the file"}
	r, got := s.do(ctx, req, sendMode{})
	v.got, v.outcome = got, Fail
	if r != nil && r.complete() && r.status != course.StatusOK {
		v.outcome = Pass
	}
	if r != nil && r.payload != nil && bytes.Equal(r.payload, secret) {
		v.got += "; THE FILE WAS SERVED"
	}
	return v
}

func (s *serverRun) needOutside() (string, bool) {
	switch {
	case s.dir == "":
		return "needs --files: the checker places a file outside the served folder", false
	case s.outside == "":
		return "the temporary folder is inside the served folder: no outside to reach", false
	case !s.userOK:
		return needsAccount, false
	}
	return "", true
}

func (s *serverRun) pathDotdot(ctx context.Context) verdict {
	if why, ok := s.needOutside(); !ok {
		return notApplicable(why)
	}
	// Enough ../ to reach / from the served folder, then down to the
	// secret: whatever the server's idea of its root, following .. gets
	// there, since .. at / stays at /.
	path := strings.Repeat("../", s.rootDepth+1) + strings.TrimPrefix(s.outside, "/")
	if len(path) > course.MaxBodySize {
		return notApplicable("the path to the file outside is longer than a request can carry")
	}
	return s.refusedNotServed(ctx, request(s.user, s.sig, path), s.secret)
}

func (s *serverRun) pathAbsolute(ctx context.Context) verdict {
	if why, ok := s.needOutside(); !ok {
		return notApplicable(why)
	}
	// Both spellings: servers that strip one leading / still see an
	// absolute path in the second.
	v := s.refusedNotServed(ctx, request(s.user, s.sig, s.outside), s.secret)
	w := s.refusedNotServed(ctx, request(s.user, s.sig, "/"+s.outside), s.secret)
	v.sent += "; then " + w.sent
	v.got += "; then " + w.got
	if w.outcome == Fail {
		v.outcome = Fail
	}
	return v
}

func (s *serverRun) pathSymlink(ctx context.Context) verdict {
	if why, ok := s.needOutside(); !ok {
		return notApplicable(why)
	}
	v := s.refusedNotServed(ctx, request(s.user, s.sig, s.dir+"/link-out"), s.secret)
	v.sent = "link-out -> " + s.outside + ": " + v.sent
	return v
}

func (s *serverRun) noRequest(ctx context.Context) verdict {
	if why, ok := s.needFile(s.small); !ok {
		return notApplicable(why)
	}
	d := net.Dialer{Timeout: s.cfg.Timeout}
	for i := range 3 {
		c, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return verdict{outcome: Fail, sent: "connect", got: err.Error()}
		}
		if i == 1 {
			c.(*net.TCPConn).CloseWrite()
			time.Sleep(50 * time.Millisecond)
		}
		if i == 2 {
			c.(*net.TCPConn).SetLinger(0) // a reset rather than a close
		}
		c.Close()
	}
	v := s.expectStatus(ctx, request(s.user, s.sig, s.small.path), sendMode{}, course.StatusOK, s.small.data)
	v.sent = "three connections closed without a byte (a close, a half-close, a reset), then " + v.sent
	return v
}

func (s *serverRun) slowClient(ctx context.Context) verdict {
	if why, ok := s.needFile(s.small); !ok {
		return notApplicable(why)
	}
	d := net.Dialer{Timeout: s.cfg.Timeout}
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	for i := range 2 {
		c, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return verdict{outcome: Fail, sent: "connect", got: err.Error()}
		}
		stalled = append(stalled, c)
		if i == 1 {
			c.Write(request(s.user, s.sig, s.small.path)[:10])
		}
	}
	time.Sleep(100 * time.Millisecond) // let the server take them on
	const limit = 2 * time.Second
	req := request(s.user, s.sig, s.small.path)
	v := verdict{
		sent:     "two connections that stall (one silent, one after 10 header bytes), then on a third " + describeRequest(req),
		expected: fmt.Sprintf("on the third, within %v while the others wait: status 1 OK, %d bytes, then the close", limit, len(s.small.data)),
		outcome:  Fail,
	}
	r, err := exchange(ctx, s.cfg.Addr, req, sendMode{}, limit)
	if err != nil {
		v.got = err.Error()
		return v
	}
	v.got = r.describe()
	if r.complete() && len(r.afterProblems()) == 0 && r.status == course.StatusOK && bytes.Equal(r.payload, s.small.data) {
		v.outcome = Pass
	}
	return v
}

// retriedConnect is how long a connection takes to open when its first
// SYN was dropped: Linux retries after one second. On loopback a
// connection the kernel takes at once opens in well under a millisecond,
// however busy the server is, so this is a full backlog, not a slow one.
const retriedConnect = 900 * time.Millisecond

func (s *serverRun) manyClients(ctx context.Context) verdict {
	f := s.medium
	if _, ok := s.needFile(f); !ok {
		f = s.small
	}
	if why, ok := s.needFile(f); !ok {
		return notApplicable(why)
	}
	n := s.cfg.Clients
	req := request(s.user, s.sig, f.path)
	v := verdict{sent: fmt.Sprintf("%d connections at once, each: %s", n, describeRequest(req)),
		expected: fmt.Sprintf("every one connected at once, then status 1 OK, %d bytes with sha256 %s", len(f.data), shortHash(f.data))}
	type outcome struct {
		ok      bool
		elapsed time.Duration
		connect time.Duration
		kind    string // what went wrong, the same words for the same fault
	}
	results := make([]outcome, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, got := s.do(ctx, req, sendMode{})
			results[i] = outcome{kind: got}
			if r != nil {
				results[i].elapsed, results[i].connect = r.elapsed, r.connect
				results[i].ok = r.complete() && len(r.afterProblems()) == 0 && r.status == course.StatusOK && bytes.Equal(r.payload, f.data)
				results[i].kind = r.fault()
			}
		}()
	}
	close(start)
	wg.Wait()
	good, slowest, slowConnects, slowestConnect := 0, time.Duration(0), 0, time.Duration(0)
	kinds := map[string]int{} // what went wrong, and how often
	var order []string
	for _, o := range results {
		if o.ok {
			good++
		} else {
			if kinds[o.kind] == 0 {
				order = append(order, o.kind)
			}
			kinds[o.kind]++
		}
		slowest = max(slowest, o.elapsed)
		slowestConnect = max(slowestConnect, o.connect)
		if o.connect >= retriedConnect {
			slowConnects++
		}
	}
	v.got = fmt.Sprintf("%d of %d whole and correct; slowest reply %v, slowest connection %v", good, n, slowest.Round(time.Millisecond), slowestConnect.Round(time.Millisecond))
	if slowConnects > 0 {
		v.got += fmt.Sprintf("; %d connections took %v or more to open: the listen backlog overflowed and they were retried", slowConnects, retriedConnect)
	}
	for i, k := range order {
		if i == 3 {
			v.got += fmt.Sprintf("; %d more kinds of failure", len(order)-i)
			break
		}
		v.got += fmt.Sprintf("; %d: %s", kinds[k], k)
	}
	v.outcome = Fail
	if good == n && slowConnects == 0 {
		v.outcome = Pass
	}
	return v
}
