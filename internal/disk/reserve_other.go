//go:build !linux

package disk

type fsID struct{}

// statFS is not implemented here: no reserve is kept.
func statFS(string) (fsStat, bool) { return fsStat{}, false }
