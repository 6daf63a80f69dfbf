package dynamo

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// The packed forms of a batch's progress in layout 3 (jobs_batches.go). Both are stored: never
// change a code or a field's meaning, only add flags.

// statusCodes are the one-byte codes of the devices' statuses (a device's s<i> attribute, a
// command's status in its packed results).
var statusCodes = map[run.Status]byte{
	run.Queued: 'q', run.Running: 'r', run.Succeeded: 's', run.Failed: 'f', run.TimedOut: 't',
	run.Unreachable: 'u', run.AuthFailed: 'a', run.HostKeyMismatch: 'k', run.Cancelled: 'c',
}

// codeStatuses maps statusCodes back.
var codeStatuses = func() map[byte]run.Status {
	m := make(map[byte]run.Status, len(statusCodes))
	for s, c := range statusCodes {
		m[c] = s
	}
	return m
}()

// countedStatuses is the order of the counts in a packed per-batch count entry: every status but
// queued, whose count follows from the others.
var countedStatuses = []run.Status{run.Running, run.Succeeded, run.Failed, run.TimedOut, run.Unreachable, run.AuthFailed, run.HostKeyMismatch, run.Cancelled}

func statusCode(s run.Status) (byte, error) {
	c, ok := statusCodes[s]
	if !ok {
		return 0, fmt.Errorf("status %q has no code", s)
	}
	return c, nil
}

// Flags of a packed device state's first byte: which fields follow, in this order.
const (
	packWhy     = 1 << iota // reason: length and bytes
	packMS                  // duration in ms
	packSeqMS               // seq's milliseconds; its batch bits are the batch's
	packSeq                 // seq in full (batch bits other than the batch's)
	packHash                // output digest: length and bytes
	packCmds                // per-command results: count, then each command
	packChanged             // drift flag known; packChangedTrue says its value
	packChangedTrue
)

// Flags of a packed command result's second byte (the first is its status code).
const (
	cmdWhy   = 1 << iota // reason: length and bytes
	cmdExit              // exit status, zigzag
	cmdBytes             // bytes
)

var errBadPacking = errors.New("malformed packed device state")

// packState packs a device's state but its status (kept apart, for conditions to test) for the
// device's batch: empty when there is nothing but the status.
func packState(d devState, batch int) ([]byte, error) {
	var flags byte
	out := []byte{0}
	if d.Why != "" {
		flags |= packWhy
		out = binary.AppendUvarint(out, uint64(len(d.Why)))
		out = append(out, d.Why...)
	}
	if d.MS > 0 {
		flags |= packMS
		out = binary.AppendUvarint(out, uint64(d.MS))
	}
	switch {
	case d.Q > 0 && d.Q&(bulk.SeqPerMS-1) == int64(batch)&(bulk.SeqPerMS-1):
		flags |= packSeqMS
		out = binary.AppendUvarint(out, uint64(d.Q>>bulk.SeqBatchBits))
	case d.Q > 0:
		flags |= packSeq
		out = binary.AppendUvarint(out, uint64(d.Q))
	}
	if len(d.H) > 0 {
		flags |= packHash
		out = binary.AppendUvarint(out, uint64(len(d.H)))
		out = append(out, d.H...)
	}
	if len(d.C) > 0 {
		flags |= packCmds
		out = binary.AppendUvarint(out, uint64(len(d.C)))
		for _, c := range d.C {
			code, err := statusCode(run.Status(c.S))
			if err != nil {
				return nil, err
			}
			var cf byte
			var rest []byte
			if c.Why != "" {
				cf |= cmdWhy
				rest = binary.AppendUvarint(rest, uint64(len(c.Why)))
				rest = append(rest, c.Why...)
			}
			if c.X != nil {
				cf |= cmdExit
				rest = binary.AppendVarint(rest, int64(*c.X))
			}
			if c.B > 0 {
				cf |= cmdBytes
				rest = binary.AppendUvarint(rest, uint64(c.B))
			}
			out = append(append(out, code, cf), rest...)
		}
	}
	if d.Chg != nil {
		flags |= packChanged
		if *d.Chg {
			flags |= packChangedTrue
		}
	}
	if flags == 0 {
		return nil, nil
	}
	out[0] = flags
	return out, nil
}

// unpackState is packState's inverse; the status is the caller's.
func unpackState(b []byte, status string, batch int) (devState, error) {
	d := devState{S: status}
	if len(b) == 0 {
		return d, nil
	}
	r := packReader{b: b[1:]}
	flags := b[0]
	if flags&packWhy != 0 {
		d.Why = r.str()
	}
	if flags&packMS != 0 {
		d.MS = int64(r.uvarint())
	}
	if flags&packSeqMS != 0 {
		d.Q = int64(r.uvarint())<<bulk.SeqBatchBits | int64(batch)&(bulk.SeqPerMS-1)
	}
	if flags&packSeq != 0 {
		d.Q = int64(r.uvarint())
	}
	if flags&packHash != 0 {
		d.H = r.bytes()
	}
	if flags&packCmds != 0 {
		n := r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			code, cf := r.byte(), r.byte()
			st, ok := codeStatuses[code]
			if !ok && r.err == nil {
				r.err = errBadPacking
			}
			c := devCmd{S: string(st)}
			if cf&cmdWhy != 0 {
				c.Why = r.str()
			}
			if cf&cmdExit != 0 {
				x := int(r.varint())
				c.X = &x
			}
			if cf&cmdBytes != 0 {
				c.B = int64(r.uvarint())
			}
			d.C = append(d.C, c)
		}
	}
	if flags&packChanged != 0 {
		chg := flags&packChangedTrue != 0
		d.Chg = &chg
	}
	if r.err != nil || len(r.b) > 0 {
		return devState{}, errBadPacking
	}
	return d, nil
}

// packReader reads a packed state, remembering the first error.
type packReader struct {
	b   []byte
	err error
}

func (r *packReader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }
func (r *packReader) varint() int64   { return readVarint(r, binary.Varint) }

// readVarint reads one varint with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *packReader, read func([]byte) (T, int)) T {
	v, n := read(r.b)
	if n <= 0 {
		r.err, r.b = errBadPacking, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *packReader) byte() byte {
	if len(r.b) == 0 {
		r.err = errBadPacking
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *packReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errBadPacking, nil
		return nil
	}
	out := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return out
}

func (r *packReader) str() string { return string(r.bytes()) }

// packCounts packs a batch's counts (how many of its devices are in each status but queued) at
// version v of its progress item: the version first, 4 bytes big-endian, so that a newer entry
// compares greater as a binary attribute whatever its counts.
func packCounts(v uint32, counts map[run.Status]int) []byte {
	out := binary.BigEndian.AppendUint32(nil, v)
	for _, s := range countedStatuses {
		out = binary.AppendUvarint(out, uint64(max(counts[s], 0)))
	}
	return out
}

// unpackCounts adds a packed entry's counts to counts as moves from queued.
func unpackCounts(b []byte, counts map[run.Status]int) error {
	if len(b) < 4 {
		return errBadPacking
	}
	r := packReader{b: b[4:]}
	for _, s := range countedStatuses {
		n := int(r.uvarint())
		counts[s] += n
		counts[run.Queued] -= n
	}
	if r.err != nil || len(r.b) > 0 {
		return errBadPacking
	}
	return nil
}
