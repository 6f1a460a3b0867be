package executor

import "sync"

// tail is an io.Writer that keeps the last max bytes written to it.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	written int64
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.written += int64(n)
	if n >= t.max {
		t.buf = append(t.buf[:0], p[n-t.max:]...)
		return n, nil
	}
	if len(t.buf)+n > 2*t.max {
		// Compact: keep what the tail still needs, so the buffer stays
		// within twice the limit whatever is written.
		keep := t.max - n
		copy(t.buf, t.buf[len(t.buf)-keep:])
		t.buf = t.buf[:keep]
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}

// cut reports whether bytes were dropped from the front.
func (t *tail) cut() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written > int64(t.max)
}
