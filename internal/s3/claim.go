package s3

import (
	"bytes"
	"io"
	"strconv"

	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder"
)

// claim is what PREFIX/servers/NAME holds while a server of that name
// runs: who it is, for the message that refuses another.
type claim struct {
	Instance string `json:"instance"`
	Host     string `json:"host"`
	// Boot is the boot of Host's kernel the process runs in, where the
	// system says ("" elsewhere): two machines of one host name (their
	// distribution's default, such as raspberrypi) have different boots,
	// and PID names a process of Host only in the boot that wrote it.
	Boot string `json:"boot,omitempty"`
	// PIDNS is the PID namespace the process runs in, where the system
	// says: containers on one machine share its boot and often a host
	// name, and each numbers its processes apart, so PID names a process
	// only in the namespace that wrote it.
	PIDNS   string    `json:"pidns,omitempty"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Claim makes this process the one server called name on the bucket
// while it runs, and returns the function that lets go of the name (at
// shutdown). Servers sharing a bucket each replay their own journal, by
// their names; two of one name (a data folder copied to a second
// machine, with its server-id) would replay each other's changes while
// they are made. So a name another process holds is refused: one whose
// claim was rewritten within the last activeWindow (every heartbeat
// while it runs), but for a process of this host that is gone (a server
// restarted after a crash takes its name back at once). A claim not
// rewritten for activeWindow is of a server that died, and is taken.
// lost, if not nil, is called once, by the heartbeat, if another process
// takes the name meanwhile (this one was stopped, or cut off from the
// store, for the active window): the caller should then stop serving.
func (b *Backend) Claim(name string, lost func()) (release func(), err error) {
	key := b.root + "servers/" + name
	host, _ := os.Hostname()
	me := claim{Instance: b.instance, Host: host, Boot: bootID(), PIDNS: pidNamespace(), PID: os.Getpid(), Started: time.Now().UTC().Truncate(time.Second)}
	body, _ := json.Marshal(me)
	var tag string // of the claim as this process last wrote it
	for try := 0; ; try++ {
		var err error
		if tag, err = b.putIf(key, body, "*", ""); err == nil {
			break
		}
		if !isPrecondition(err) || try == 2 {
			return nil, b.fail(err, "cannot claim this server's name on the bucket")
		}
		old, modified, oldTag, err := b.getTagged(key)
		if isNotFound(err) {
			continue // let go of meanwhile
		}
		if err != nil {
			return nil, b.fail(err, "cannot read the claim on this server's name")
		}
		var c claim
		if json.Unmarshal(old, &c) == nil && c.Instance != me.Instance {
			age := time.Since(modified)
			gone := c.Host == host && c.Boot == me.Boot && c.PIDNS == me.PIDNS && c.PID != me.PID && !alive(c.PID)
			if age < b.activeWindow && !gone {
				return nil, larder.Errorf(larder.ECONFLICT,
					"another server runs under this server's name, %s (DATA/server-id), on this bucket: on host %s, pid %d, started %s, seen %s ago. Its data folder and this one are copies, and the two would replay each other's changes to files: give each server a data folder of its own (copy the pepper file, never the folder). If that server is gone, start this one again in %s",
					name, c.Host, c.PID, c.Started.Format(time.RFC3339), age.Round(time.Second), (b.activeWindow - age).Round(time.Second))
			}
		}
		// Of a server that died: taken, if it is still the claim just
		// read. Another process taking it meanwhile has put its own,
		// which only it may remove.
		if err := b.removeIf(key, oldTag); err != nil && !isPrecondition(err) {
			return nil, b.fail(err, "cannot claim this server's name on the bucket")
		}
	}
	stop := make(chan struct{})
	var (
		wg sync.WaitGroup
		// taken says that another process took the claim. It and tag
		// are the heartbeat's until it ends.
		taken bool
	)
	wg.Go(func() {
		t := time.NewTicker(b.claimBeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// Rewritten only while it is this process's: once
				// another has taken it (this one was stopped, or cut off
				// from the store, for the active window), it is theirs.
				nt, err := b.putIf(key, body, "", tag)
				if code(err) == "NotImplemented" {
					// A store that takes no condition on a write: as
					// before conditions were sent.
					nt, err = b.putIf(key, body, "", "")
				}
				switch {
				case err == nil:
					tag = nt
				case isPrecondition(err) || isNotFound(err):
					taken = true
					if lost != nil {
						lost()
					}
					return
				}
				// Another error: best effort, one missed is made up by
				// the next.
			case <-stop:
				return
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			if !taken {
				b.removeIf(key, tag)
			}
		})
	}, nil
}

// putIf writes body at key if the object there has the ETag ifMatch, or,
// with ifNoneMatch "*", if there is none; it returns the new object's
// ETag.
func (b *Backend) putIf(key string, body []byte, ifNoneMatch, ifMatch string) (string, error) {
	ctx, cancel := b.ctx()
	defer cancel()
	in := &awss3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
	if ifNoneMatch != "" {
		in.IfNoneMatch = &ifNoneMatch
	}
	if ifMatch != "" {
		in.IfMatch = &ifMatch
	}
	out, err := b.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// getTagged is getModified, with the object's ETag.
func (b *Backend) getTagged(key string) ([]byte, time.Time, string, error) {
	ctx, cancel := b.ctx()
	defer cancel()
	out, err := b.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, time.Time{}, "", err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	return body, aws.ToTime(out.LastModified), aws.ToString(out.ETag), err
}

// removeIf deletes the object key if its ETag is tag; one that is not
// there is no error, one of another ETag a precondition error. A store
// that takes no condition on a delete (an error of another kind) has it
// deleted whatever it holds, as before conditions were sent.
func (b *Backend) removeIf(key, tag string) error {
	if tag == "" { // a store that names no ETag
		return b.remove(key)
	}
	ctx, cancel := b.ctx()
	defer cancel()
	_, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &b.bucket, Key: &key, IfMatch: &tag})
	switch {
	case err == nil || isNotFound(err):
		return nil
	case isPrecondition(err):
		return err
	}
	return b.remove(key)
}

// bootID returns what tells this boot of this machine's kernel from any
// other (Linux's random boot_id), or "" where the system does not say.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace returns what tells the PID namespace this process runs in
// from the others of its machine (Linux's /proc/self/ns/pid, such as
// "pid:[4026531836]"), or "" where the system does not say.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// alive reports whether the process pid of this host runs: it exists,
// and has not ended unreaped.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	// A zombie takes signals, but runs no more.
	return (err == nil || !errors.Is(err, os.ErrProcessDone)) && !zombie(pid)
}

// zombie reports whether the process pid of this host has ended but not
// been waited for, where the system says (Linux's /proc/PID/stat).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command, in parentheses that may hold any
	// character: after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
