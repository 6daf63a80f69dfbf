package sshexec

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// countingConn counts the reads that reach a connection.
type countingConn struct {
	net.Conn
	reads *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// TestReadAheadVersionLine: the client's handshake reads the server's version line in a read or
// two instead of one per byte, and loses none of the bytes after it (the handshake completes).
func TestReadAheadVersionLine(t *testing.T) {
	const version = "SSH-2.0-NetAuto_test_server_with_a_version_line_of_some_length"
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	hostKey, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	srv := &ssh.ServerConfig{NoClientAuth: true, ServerVersion: version}
	srv.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, srv)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "no channels")
				}
				_ = sc.Wait()
			}()
		}
	}()

	tests := []struct {
		name string
		wrap func(net.Conn) net.Conn
		// atMost and atLeast bound the reads that reached the socket by the handshake's end.
		atMost, atLeast int64
	}{
		{name: "read ahead", wrap: func(c net.Conn) net.Conn { return newReadAhead(c) }, atMost: int64(len(version)) / 4},
		{name: "bare connection, as x/crypto/ssh reads it", wrap: func(c net.Conn) net.Conn { return c }, atLeast: int64(len(version))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			var reads atomic.Int64
			cfg := &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey())}
			c, chans, reqs, err := ssh.NewClientConn(tc.wrap(countingConn{Conn: raw, reads: &reads}), raw.RemoteAddr().String(), cfg)
			require.NoError(t, err, "handshake")
			n := reads.Load()
			t.Logf("%d reads from the socket for a %d-byte version line and the key exchange", n, len(version))
			client := ssh.NewClient(c, chans, reqs)
			assert.Equal(t, version, string(client.ServerVersion()), "server version read")
			require.NoError(t, client.Close())
			if tc.atMost > 0 {
				assert.LessOrEqual(t, n, tc.atMost, "reads from the socket during the handshake")
			}
			assert.GreaterOrEqual(t, n, tc.atLeast, "reads from the socket during the handshake")
		})
	}
}
