// Package logtest catches what the console logs, for tests that assert on
// log records (correlation ids present, secrets absent).
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer for a logger that many goroutines write to at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
