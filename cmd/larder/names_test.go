package main

import "testing"

// TestPutComposesLocalName: a local file whose name is decomposed (as
// macOS writes names) is uploaded under the composed (NFC) form of its
// name, which the server's rule for new names accepts; a name the user
// types is sent as typed.
func TestPutComposesLocalName(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	local := writeLocal(t, t.TempDir(), "cafe\u0301.txt", []byte("x"))
	runOK(t, env, "put", local)
	runOK(t, env, "stat", "/caf\u00e9.txt")
	wantExit(t, env, exitNotFound, []string{"NFC", `\u00e9.txt`}, "put", local, "/e\u0301.txt")
}
