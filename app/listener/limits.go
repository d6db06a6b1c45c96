package listener

// DefaultMaxConnsPerIP is the cap on one client address's open connections.
const DefaultMaxConnsPerIP = 100

// fasthttpConcurrency is fasthttp's own default cap on connections served
// at once.
const fasthttpConcurrency = 256 * 1024

// Limits returns the caps that keep a server under its file-descriptor
// limit fds (0: unknown): at most half the descriptors for client
// connections (the rest is for the database, upstream calls and logs), and
// at most DefaultMaxConnsPerIP of them for one address.
func Limits(fds uint64) (conns, perIP int) {
	conns = fasthttpConcurrency
	if fds > 0 && fds/2 < uint64(conns) {
		conns = max(int(fds/2), 1) //nolint:gosec // below fasthttpConcurrency
	}
	return conns, min(DefaultMaxConnsPerIP, conns)
}
