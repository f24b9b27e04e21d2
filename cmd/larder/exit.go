package main

// Exit codes of larder, so that scripts can tell failures apart without
// reading messages. Which failure gives which is the table failures, in
// failures.go; the README's table is made from it.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotFound  = 3
	exitDenied    = 4
	exitNetwork   = 5
	exitIntegrity = 6
	exitQuota     = 7
	exitNoSpace   = 8
	exitInterrupt = 130
)
