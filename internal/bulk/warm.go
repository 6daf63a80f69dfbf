package bulk

import (
	"sync"
	"time"
)

// warmIdle is how long a warm goroutine waits for its next function before it ends.
const warmIdle = 5 * time.Second

// warmGoroutines runs functions on goroutines that outlive them. A device's run (an SSH
// handshake) and the lookup of its previous run (the SDK's middleware) go deep, and a new
// goroutine's 8 KiB stack grows to that depth by copying itself several times, once per device;
// a goroutine waiting for its next function keeps its grown stack (until a collection finds it
// mostly unused and halves it). The zero value is ready to use.
type warmGoroutines struct {
	once sync.Once
	work chan func()
}

// Go runs f on a waiting goroutine, or on a new one when none waits.
func (w *warmGoroutines) Go(f func()) {
	w.once.Do(func() { w.work = make(chan func()) })
	select {
	case w.work <- f:
	default:
		go w.serve(f)
	}
}

// serve runs f, then the functions handed to it, until none comes for warmIdle.
func (w *warmGoroutines) serve(f func()) {
	idle := time.NewTimer(warmIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(warmIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		}
	}
}
