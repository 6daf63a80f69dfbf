package sshexec

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepaliveRequest is the global request OpenSSH's ServerAliveInterval sends; any reply, even
// a refusal, proves the peer is alive.
const keepaliveRequest = "keepalive@openssh.com"

// keepalive sends a keepalive request on conn every opts.KeepaliveInterval and calls dead once
// when opts.KeepaliveMax intervals pass without a reply to the outstanding one (a silent
// peer, or a firewall that dropped the flow). peer names the other end in the message. The
// returned stop ends the loop and waits for it.
func keepalive(conn ssh.Conn, opts Options, dead func(*abortCause), peer string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(opts.KeepaliveInterval)
		defer ticker.Stop()
		replies := make(chan struct{}, 1)
		pending, missed := false, 0
		for {
			select {
			case <-done:
				return
			case <-replies:
				pending, missed = false, 0
			case <-ticker.C:
				if pending {
					missed++
					if missed >= opts.KeepaliveMax {
						dead(&abortCause{StatusFailed, ReasonDisconnected, fmt.Sprintf(
							"%s stopped answering: no reply to a keepalive within %s", peer,
							time.Duration(opts.KeepaliveMax)*opts.KeepaliveInterval)})
						return
					}
					continue
				}
				pending = true
				// SendRequest blocks until the reply or until the connection closes, which
				// the connection's owner does after stop.
				go func() {
					if _, _, err := conn.SendRequest(keepaliveRequest, true, nil); err == nil {
						select {
						case replies <- struct{}{}:
						default:
						}
					}
				}()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
