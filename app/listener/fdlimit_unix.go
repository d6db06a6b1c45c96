//go:build unix

package listener

import "syscall"

// FDLimit is the process's limit on open file descriptors (RLIMIT_NOFILE,
// as the Go runtime raised it at start-up), or 0 when unknown.
func FDLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur) //nolint:unconvert // int64 on some platforms
}
