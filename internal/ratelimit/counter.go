package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Counter is a set of fixed-window counters: a counter starts at its first
// hit, counts for one window, and then disappears.
type Counter interface {
	// Add adds n (0 or more) to the counter key and returns its count and the
	// time left in its window. A counter that does not exist starts a window
	// of the given length when n is more than 0; with n 0, Add only reads,
	// and returns 0 for a counter that does not exist.
	Add(ctx context.Context, key string, n int64, window time.Duration) (count int64, left time.Duration, err error)
	// Reset removes the counter key, ending its window.
	Reset(ctx context.Context, key string) error
}

// DefaultMaxKeys is the default bound on the counters a Memory keeps.
const DefaultMaxKeys = 100_000

// Memory is a Counter kept in the memory of one process. It is safe for
// concurrent use.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	windows   map[string]*window
	nextSweep time.Time
}

type window struct {
	count int64
	end   time.Time
}

var _ Counter = (*Memory)(nil)

// NewMemory returns an in-memory counter set on the clock now (time.Now
// when nil) that keeps at most maxKeys counters (DefaultMaxKeys when 0 or
// less). When it is full it first drops the counters whose window has ended,
// then arbitrary ones, so that memory stays bounded whatever the traffic.
func NewMemory(now func() time.Time, maxKeys int) *Memory {
	if now == nil {
		now = time.Now
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{now: now, maxKeys: maxKeys, windows: make(map[string]*window)}
}

// Add implements Counter.
func (m *Memory) Add(_ context.Context, key string, n int64, d time.Duration) (int64, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.windows[key]
	if w != nil && !now.Before(w.end) {
		delete(m.windows, key)
		w = nil
	}
	if n <= 0 {
		if w == nil {
			return 0, 0, nil
		}
		return w.count, w.end.Sub(now), nil
	}
	if w == nil {
		m.makeRoom(now)
		w = &window{end: now.Add(d)}
		m.windows[key] = w
	}
	w.count += n
	return w.count, w.end.Sub(now), nil
}

// Reset implements Counter.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.windows, key)
	return nil
}

// makeRoom drops ended windows now and then, and arbitrary ones when the
// map is still full.
func (m *Memory) makeRoom(now time.Time) {
	if len(m.windows) < m.maxKeys && now.Before(m.nextSweep) {
		return
	}
	for k, w := range m.windows {
		if !now.Before(w.end) {
			delete(m.windows, k)
		}
	}
	m.nextSweep = now.Add(time.Minute)
	for k := range m.windows { // map order is random enough
		if len(m.windows) < m.maxKeys {
			break
		}
		delete(m.windows, k)
	}
}

// Len returns the number of counters kept, ended ones included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.windows)
}
