//go:build !unix

package listener

// FDLimit is unknown on this platform (0).
func FDLimit() uint64 { return 0 }
