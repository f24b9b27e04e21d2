//go:build unix

package main

import "syscall"

// openNonBlock opens a file to read without waiting on a FIFO swapped in
// for it after it was looked at; reads of a regular file are the same.
const openNonBlock = syscall.O_NONBLOCK
