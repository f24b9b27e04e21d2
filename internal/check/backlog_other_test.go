//go:build !unix

package check

import (
	"net"
	"testing"
)

func listenBacklog(t *testing.T, n int) net.Listener {
	t.Skip("a listen backlog of our choosing needs the POSIX socket calls")
	return nil
}
