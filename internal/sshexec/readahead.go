package sshexec

import (
	"bufio"
	"net"
)

// readAheadSize is the buffer in front of a connection's reads: room for an SSH version line
// (at most 255 bytes) and what a server sends with it, small beside the transport's own buffer
// so that later reads bypass it.
const readAheadSize = 512

// readAhead is a connection whose reads go through a small buffer. x/crypto/ssh reads the server's
// version line one byte per Read; on a socket that is a system call per byte, here one for the
// line. The transport reads everything after the line through the same buffer, so no byte is lost.
type readAhead struct {
	net.Conn
	r *bufio.Reader
}

func newReadAhead(c net.Conn) readAhead {
	return readAhead{Conn: c, r: bufio.NewReaderSize(c, readAheadSize)}
}

// Read reads from the buffer, refilling it from the connection.
func (c readAhead) Read(p []byte) (int, error) { return c.r.Read(p) }
