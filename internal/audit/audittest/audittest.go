// Package audittest provides an in-memory audit recorder for unit tests of the code that
// records audit entries.
package audittest

import (
	"context"
	"sync"

	"github.com/netauto/netauto/internal/audit"
)

// Recorder keeps every entry recorded, in order. Err, when set, is returned by Record (the
// entry is kept all the same, so a test sees what was attempted).
type Recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
	Err     error
}

// Record keeps e.
func (r *Recorder) Record(_ context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return r.Err
}

// Entries returns the entries recorded so far.
func (r *Recorder) Entries() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Entry(nil), r.entries...)
}

// Actions returns the action of each entry recorded so far, in order.
func (r *Recorder) Actions() []string {
	var out []string
	for _, e := range r.Entries() {
		out = append(out, e.Action)
	}
	return out
}

// Reset forgets the entries recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = nil
}
