//go:build !unix

package main

// openNonBlock is unix's O_NONBLOCK, which other systems do without.
const openNonBlock = 0
