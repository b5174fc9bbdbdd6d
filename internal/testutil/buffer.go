package testutil

import (
	"bytes"
	"sync"
)

// Buffer collects what several goroutines write (a logger's output, a
// process's) for a test to read while they still write. It is safe for
// concurrent use. The zero Buffer is empty and keeps everything.
type Buffer struct {
	// Max, when more than 0, bounds what the buffer keeps to the last Max
	// bytes written.
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Write(p)
	if b.Max > 0 && b.b.Len() > b.Max {
		b.b.Next(b.b.Len() - b.Max)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
