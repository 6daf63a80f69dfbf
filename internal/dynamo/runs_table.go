package dynamo

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// The runs table's layout, the one home of every key, prefix and item shape the run store and the
// retention store (the purges and the TTL stream consumer behind it) read and write:
//
//	RUN#<id>        META            the run (GSI by_device: DEV#<device> / <created>#<id>;
//	                                GSI by_day: DAY#<yyyy-mm-dd>#<nn> / <created>#<id>, nn the
//	                                run's day shard: a day's runs spread over dayShards
//	                                partitions. Items written before the shards carry the
//	                                legacy DAY#<yyyy-mm-dd>, which the age purge still reads.
//	                                A run its batch's run list names (run.Listed) has no
//	                                by_day entry: the list's entry stands for it)
//	                                The output's last piece (under ChunkSize) is kept inline in
//	                                META (tail, tail_size): a short output costs no extra item.
//	                                A run finished before 2026-12-07 is also in GSI by_command:
//	                                CMD#<device>#<command hash> / <created>#<id> (since, its
//	                                entry below stands for it: entries.go)
//	RUN#<id>        CHUNK#<000000>  one full output chunk (ChunkSize bytes), in order
//	RUNLIST#<job>#<batch> LIST      the runs a batch's first invocation writes (devs), listed
//	                                before any of them in GSI by_day at the batch's start
//	                                (runlists.go)
//	DEVBYTES#<dev>  COUNTER         the device's stored chunk bytes (bytes), a count of its
//	                                changes (ver) and what the purge last folded of the device into
//	                                the fleet totals (folded_charged, folded_stored; totals.go);
//	                                while it has changed since the byte purge last looked, it is in
//	                                the changed set
//	DEVBYTES#<dev>  TAIL#<run id>   the run's entry: its inline tail bytes (bytes), the ledger
//	                                item that counts them, living exactly as long as the run item,
//	                                and its place in its device's history of its command (command
//	                                hash, status, filtered digest: entries.go). A device's stored
//	                                bytes are its COUNTER plus its TAIL# items (readByteLedger), so
//	                                a run can be finished with a plain batch write of two puts
//	                                instead of a transaction. Every run finished since 2026-12-07
//	                                has one; without an inline tail it counts 0 bytes and expires
//	                                with the run (expires_at)
//	RETENTION       AGE_WATERMARK   {day}: every run created on or before day is gone
//	RETENTION       UNMARKED_SINCE  {at}: since when finished runs' tail items may be outside the
//	                                changed set (see changedLag); written once, never moved
//	RETENTION       REPORT          {report}: the last purge report, as JSON
//	RETENTION       COMMAND_ENTRIES {at, legacy}: since when finished runs have entries, and
//	                                whether GSI by_command still held runs (entries.go)
//	TTLDEL#RUN#<id> TTLDEL#CHUNK#<n> a chunk TTL deleted whose size the stream consumer has
//	                                subtracted, so a redelivered stream record never subtracts
//	                                twice; it expires after ttlMarkerKeep, and its own TTL deletion
//	                                does not pass the stream filter (sk prefix CHUNK#, or META with
//	                                a tail_size). A run item's inline tail needs no marker: the
//	                                consumer deletes its ledger item.
//
// The changed set: the devices whose bytes moved since the byte purge last folded them. It has two
// parts. A byte counter that changes (or whose device lost a tail item) gets
// gsi2pk=DEVCHG#<shard>, gsi2sk=<device>: sparse entries in GSI by_day, spread over changedShards
// shards so a busy fleet never makes one hot GSI partition; the byte purge removes them once the
// device is at or below the cap, on condition that its bytes did not move meanwhile. A finished
// run's tail ledger item is in no index: the run's own by_day entry (DAY#<date>#<nn>, sorted by
// creation), or its batch's run list's, is what puts its device in the changed set, as the purge
// reads the runs created since the last full fold (TOTALS_AS_OF) less changedLag. A tail written more than half changedLag after
// its run was created (a reconciled or very late finish) carries the pair gsi2pk=DEVCHG#<shard>,
// gsi2sk=<device>#<run> instead, as every tail item did before UNMARKED_SINCE.
const (
	runPrefix         = "RUN#"
	runMetaSK         = "META"
	chunkPrefix       = "CHUNK#"
	counterPrefix     = "DEVBYTES#"
	counterSK         = "COUNTER"
	tailPrefix        = "TAIL#"
	devIndexPrefix    = "DEV#"
	activeIndexPrefix = "ACTIVE#"
	cmdIndexPrefix    = "CMD#"
	dayIndexPrefix    = "DAY#"
	changedPrefix     = "DEVCHG#"
	changedShards     = 32
	dayShards         = 64
	retentionPK       = "RETENTION"
	watermarkSK       = "AGE_WATERMARK"
	reportSK          = "REPORT"
	ttlMarkerPrefix   = "TTLDEL#"
	ttlMarkerKeep     = 7 * 24 * time.Hour
	unmarkedSK        = "UNMARKED_SINCE"
	// changedLag bounds how long after its run's creation a tail item may be written outside the
	// changed set: far more than a run lives (the executor's five-minute budget, a single run's
	// API timeout) and than GSI by_day lags behind the table. The byte purge reads the runs created
	// since its last full fold less changedLag.
	changedLag = time.Hour
)

// Attributes of the runs table's items that the stores name in expressions.
const (
	counterVerAttr    = "ver"
	foldedChargedAttr = "folded_charged"
	foldedStoredAttr  = "folded_stored"
	tailAttr          = "tail"
	packedTailAttr    = "tail_z"
	tailSizeAttr      = "tail_size"
	cmdsAttr          = "cmds"
)

// runItem is a run's META item.
type runItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
	GSI2PK string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK string `dynamodbav:"gsi2sk,omitempty"`
	GSI3PK string `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK string `dynamodbav:"gsi3sk,omitempty"`
	// ID is the run's id; items written since 2026-12-07 leave it out and it is read from the key
	// (runID): a run item costs a write unit per KB.
	ID       string `dynamodbav:"id,omitempty"`
	DeviceID string `dynamodbav:"device_id"`
	Command  string `dynamodbav:"command"`
	// JobID is left out when the run's id says it (jobOf): read it with jobID. NoJob says a run
	// whose id looks like a job's run has none.
	JobID       string   `dynamodbav:"job_id,omitempty"`
	NoJob       bool     `dynamodbav:"nj,omitempty"`
	RequestedBy string   `dynamodbav:"requested_by"`
	Status      string   `dynamodbav:"status"`
	Reason      string   `dynamodbav:"reason,omitempty"`
	Message     string   `dynamodbav:"message,omitempty"`
	ExitStatus  *int     `dynamodbav:"exit_status,omitempty"`
	Bytes       int64    `dynamodbav:"bytes"`
	Chunks      int      `dynamodbav:"chunks"`
	Truncated   bool     `dynamodbav:"truncated"`
	Digest      hexBytes `dynamodbav:"digest,omitempty"`
	// ContentSHA256, FilteredDigest, Changed and PreviousRunID are drift's (run.Run).
	ContentSHA256  hexBytes   `dynamodbav:"content_sha256,omitempty"`
	FilteredDigest hexBytes   `dynamodbav:"filtered_digest,omitempty"`
	Changed        *bool      `dynamodbav:"changed,omitempty"`
	PreviousRunID  string     `dynamodbav:"previous_run_id,omitempty"`
	Attempt        int        `dynamodbav:"attempt"`
	LeaseUntil     int64      `dynamodbav:"lease_until,omitempty"`
	CreatedAt      time.Time  `dynamodbav:"created_at"`
	StartedAt      *time.Time `dynamodbav:"started_at,omitempty"`
	FinishedAt     *time.Time `dynamodbav:"finished_at,omitempty"`
	ConnectMS      int64      `dynamodbav:"connect_ms"`
	AuthMS         int64      `dynamodbav:"auth_ms"`
	FirstByteMS    int64      `dynamodbav:"first_byte_ms"`
	TotalMS        int64      `dynamodbav:"total_ms"`
	ExpiresAt      int64      `dynamodbav:"expires_at,omitempty"`
	// Tail is the output's last piece, kept inline in a finished run; TailSize its length.
	// PackedTail holds it deflated instead when that is much smaller (packTail).
	Tail       []byte `dynamodbav:"tail,omitempty"`
	PackedTail []byte `dynamodbav:"tail_z,omitempty"`
	TailSize   int64  `dynamodbav:"tail_size,omitempty"`
	// Cmds are the per-command results of a finished run (run.CommandResult), with short
	// attribute names: the run item is written once per run.
	Cmds []cmdItem `dynamodbav:"cmds,omitempty"`
	// OneCmd stands for Cmds when the run ran one command whose result is the run's own (its
	// command, status, reason, exit status and bytes, from offset 0): the usual case, written
	// without repeating them.
	OneCmd bool `dynamodbav:"c1,omitempty"`
	// Blob and BlobGen name the body of an output stored once (blobs.go), which Noise rebuilds
	// the exact output from; such a run has no Tail, and TailSize is its output's size.
	// Both are hex stored as their raw bytes (hexBytes: 40 bytes less of a run item written
	// every night); items written before hold the hex.
	Blob    hexBytes `dynamodbav:"blob,omitempty"`
	BlobGen hexBytes `dynamodbav:"blob_gen,omitempty"`
	Noise   []byte   `dynamodbav:"noise,omitempty"`
}

// hexBytes is a hex digest a run item stores as its raw bytes, half the size of the hex (a run item
// written once per run costs a write unit per KB, and three digests in hex took 160 bytes). Items
// written before hold the hex string, which reads the same; a value that is not hex is stored as
// it is.
type hexBytes string

// MarshalDynamoDBAttributeValue stores the digest as binary.
func (h hexBytes) MarshalDynamoDBAttributeValue() (types.AttributeValue, error) {
	if b, err := hex.DecodeString(string(h)); err == nil && len(b) > 0 && hex.EncodeToString(b) == string(h) {
		return &types.AttributeValueMemberB{Value: b}, nil
	}
	return &types.AttributeValueMemberS{Value: string(h)}, nil
}

// UnmarshalDynamoDBAttributeValue reads a digest stored as binary or, before, as hex.
func (h *hexBytes) UnmarshalDynamoDBAttributeValue(av types.AttributeValue) error {
	switch v := av.(type) {
	case *types.AttributeValueMemberB:
		*h = hexBytes(hex.EncodeToString(v.Value))
	case *types.AttributeValueMemberS:
		*h = hexBytes(v.Value)
	case *types.AttributeValueMemberNULL:
		*h = ""
	default:
		return fmt.Errorf("digest stored as %T", av)
	}
	return nil
}

// cmdItem is one command's result in a run item: its output is the Bytes bytes from Offset of
// the run's output (chunks and tail), so reading one command reads only the chunks holding it.
type cmdItem struct {
	Command    string `dynamodbav:"c"`
	Status     string `dynamodbav:"s"`
	Reason     string `dynamodbav:"why,omitempty"`
	ExitStatus *int   `dynamodbav:"x,omitempty"`
	Bytes      int64  `dynamodbav:"b"`
	Offset     int64  `dynamodbav:"o"`
}

// toRunItem is r's META item, leased until leaseUntil (none for the zero time). An unfinished run
// is in GSI by_device under ACTIVE#<device>, sorted by the creation time alone (index keys need
// not be unique, and a page's cursor holds the table's key too); a finished one is listed by its
// entry (entries.go). by_day's sort key keeps the run's id after the time.
func toRunItem(r run.Run, leaseUntil time.Time) runItem {
	created := r.CreatedAt.UTC().Format(timeLayout)
	it := runItem{
		PK: runPrefix + r.ID, SK: runMetaSK,
		DeviceID: r.DeviceID, Command: r.Command, RequestedBy: r.RequestedBy,
		Status: string(r.Status), Reason: r.Reason, Message: r.Message, ExitStatus: r.ExitStatus,
		Bytes: r.Bytes, Chunks: r.Chunks, Truncated: r.Truncated, Digest: hexBytes(r.OutputDigest), Attempt: r.Attempt,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		ConnectMS: r.Timings.ConnectMS, AuthMS: r.Timings.AuthMS, FirstByteMS: r.Timings.FirstByteMS, TotalMS: r.Timings.TotalMS,
		ExpiresAt:     expiry(r.ExpiresAt),
		ContentSHA256: hexBytes(r.ContentSHA256), FilteredDigest: hexBytes(r.FilteredDigest), Changed: r.Changed, PreviousRunID: r.PreviousRunID,
	}
	switch job := jobOf(r.ID, r.DeviceID); {
	case r.JobID == "" && job != "":
		it.NoJob = true
	case r.JobID != job:
		it.JobID = r.JobID
	}
	if !r.Listed { // a listed run's day entry is its batch's run list's (runlists.go)
		it.GSI2PK, it.GSI2SK = dayPartition(r.CreatedAt.UTC().Format(time.DateOnly), shardOf(r.ID, dayShards)), created
	}
	if !r.Status.Terminal() { // a finished run is listed by its entry instead
		it.GSI1PK, it.GSI1SK = activeIndexPrefix+r.DeviceID, created
	}
	if mirrorsRun(r) {
		it.OneCmd = true
	} else {
		for _, c := range r.Commands {
			it.Cmds = append(it.Cmds, cmdItem{Command: c.Command, Status: string(c.Status), Reason: c.Reason, ExitStatus: c.ExitStatus, Bytes: c.Bytes, Offset: c.Offset})
		}
	}
	if !leaseUntil.IsZero() {
		it.LeaseUntil = leaseUntil.UnixMilli()
	}
	return it
}

// run is the run the item holds.
func (it runItem) run() run.Run {
	r := run.Run{
		ID: it.id(), DeviceID: it.DeviceID, Command: it.Command, JobID: it.jobID(), RequestedBy: it.RequestedBy,
		Status: run.Status(it.Status), Reason: it.Reason, Message: it.Message, ExitStatus: it.ExitStatus,
		Bytes: it.Bytes, Chunks: it.Chunks, Truncated: it.Truncated, OutputDigest: string(it.Digest), Attempt: it.Attempt,
		CreatedAt: it.CreatedAt, StartedAt: it.StartedAt, FinishedAt: it.FinishedAt,
		Timings:       run.Timings{ConnectMS: it.ConnectMS, AuthMS: it.AuthMS, FirstByteMS: it.FirstByteMS, TotalMS: it.TotalMS},
		ContentSHA256: string(it.ContentSHA256), FilteredDigest: string(it.FilteredDigest), Changed: it.Changed, PreviousRunID: it.PreviousRunID,
	}
	if it.ExpiresAt > 0 {
		r.ExpiresAt = time.Unix(it.ExpiresAt, 0).UTC()
	}
	for _, c := range it.Cmds {
		r.Commands = append(r.Commands, run.CommandResult{Command: c.Command, Status: run.Status(c.Status), Reason: c.Reason, ExitStatus: c.ExitStatus, Bytes: c.Bytes, Offset: c.Offset})
	}
	if it.OneCmd {
		r.Commands = []run.CommandResult{wholeRun(r)}
	}
	if it.LeaseUntil > 0 && run.Status(it.Status) == run.Running {
		r.LeaseUntil = time.UnixMilli(it.LeaseUntil).UTC()
	}
	return r
}

// finishedRunItem is the META item of a finished run, carrying the output's last piece inline,
// or, for an output stored once (ref), the body's key and the run's noise lines; kept is what of
// the tail the item stores itself: the tail, deflated or not, or the noise lines.
func finishedRunItem(r run.Run, tail []byte, ref *sharedRef) (item map[string]types.AttributeValue, kept int64, err error) {
	it := toRunItem(r, time.Time{})
	if len(tail) > 0 {
		it.Tail, it.TailSize, kept = tail, int64(len(tail)), int64(len(tail))
		if z, ok := packTail(tail); ok {
			it.Tail, it.PackedTail, kept = nil, z, int64(len(z))
		}
	}
	if ref != nil {
		it.Tail, it.PackedTail, it.Blob, it.BlobGen, it.Noise = nil, nil, hexBytes(ref.Key), hexBytes(ref.Gen), ref.Noise
		kept = ref.Kept
	}
	if item, err = attributevalue.MarshalMap(it); err != nil {
		return nil, 0, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	return item, kept, nil
}

// An inline tail of at least packMinBytes is stored deflated when that takes at most
// packMaxShare of its size: a run item costs a write unit per KB, and CLI output deflates 3-5
// times, so a 1 KB output fits a one-unit run item instead of two.
const (
	packMinBytes = 256
	packMaxShare = 0.8
)

// tailWriters keeps deflate writers: a new one allocates about a megabyte of tables.
var tailWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // BestSpeed is a valid level: never fails
	return w
}}

// packTail deflates an inline tail; false when it is short or does not shrink enough.
func packTail(tail []byte) ([]byte, bool) {
	if len(tail) < packMinBytes {
		return nil, false
	}
	var b bytes.Buffer
	w := tailWriters.Get().(*flate.Writer)
	w.Reset(&b)
	// Writes to a bytes.Buffer never fail.
	_, _ = w.Write(tail)
	_ = w.Close()
	tailWriters.Put(w)
	if float64(b.Len()) > packMaxShare*float64(len(tail)) {
		return nil, false
	}
	return b.Bytes(), true
}

// unpackTail inflates a tail packTail stored, which must be size bytes long.
func unpackTail(z []byte, size int64) ([]byte, error) {
	out := bytes.NewBuffer(make([]byte, 0, size))
	n, err := io.Copy(out, io.LimitReader(flate.NewReader(bytes.NewReader(z)), size+1))
	if err != nil {
		return nil, fmt.Errorf("inflate tail: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("inflate tail: %d bytes, want %d", n, size)
	}
	return out.Bytes(), nil
}

// commandPartition is the by_command partition of a device's runs of command: the command's
// SHA-256 keeps the key short and free of any character a command may hold.
func commandPartition(deviceID, command string) string {
	sum := sha256.Sum256([]byte(command))
	return cmdIndexPrefix + deviceID + "#" + hex.EncodeToString(sum[:16])
}

func runKey(id string) map[string]types.AttributeValue {
	return itemKey(runPrefix+id, runMetaSK)
}

// chunkSK is the sort key of output chunk seq: zero-padded, so chunks sort in sequence.
func chunkSK(seq int) string { return fmt.Sprintf("%s%06d", chunkPrefix, seq) }

// chunkKey is the key of the chunk of run runID with sort key sk.
func chunkKey(runID, sk string) map[string]types.AttributeValue {
	return itemKey(runPrefix+runID, sk)
}

// chunkItem is one full output chunk of a run.
type chunkItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Data      []byte `dynamodbav:"data"`
	Size      int    `dynamodbav:"size"`
	DeviceID  string `dynamodbav:"device_id"`
	ExpiresAt int64  `dynamodbav:"expires_at,omitempty"`
}

// chunkRef is a chunk's sort key and size, all the purges and take-overs read of it.
type chunkRef struct {
	SK   string `dynamodbav:"sk"`
	Size int64  `dynamodbav:"size"`
}

// bytesKey is the key of one of a device's byte items: its counter or a tail ledger item.
func bytesKey(deviceID, sk string) map[string]types.AttributeValue {
	return itemKey(counterPrefix+deviceID, sk)
}

func counterKey(deviceID string) map[string]types.AttributeValue {
	return bytesKey(deviceID, counterSK)
}

func tailKey(deviceID, runID string) map[string]types.AttributeValue {
	return bytesKey(deviceID, tailPrefix+runID)
}

// ledgerItem is a tail ledger item: the bytes of a run's inline tail, counted in its device's
// bytes, and, when marked, its place in the changed set while the byte-cap purge has not looked.
type ledgerItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	DeviceID string `dynamodbav:"device_id"`
	Bytes    int64  `dynamodbav:"bytes"`
	// Kept is what of Bytes the run stores itself: all of them, their deflated form (tail_z), or,
	// for an output stored once, its noise lines (an item written before outputs were stored once
	// has none: all).
	Kept      int64  `dynamodbav:"kept"`
	ChangedPK string `dynamodbav:"gsi2pk,omitempty"`
	ChangedSK string `dynamodbav:"gsi2sk,omitempty"`
}

// shardOf is the shard, of n, that key s falls in.
func shardOf(s string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}

// dayPartition is the by_day partition of shard i of a UTC day (yyyy-mm-dd), and i == dayShards
// the day's legacy partition, which runs written before the day was sharded are in. One day's
// runs of the whole account would otherwise share one index partition, about 1,000 writes/s.
func dayPartition(day string, i int) string {
	if i == dayShards {
		return dayIndexPrefix + day
	}
	return fmt.Sprintf("%s%s#%02d", dayIndexPrefix, day, i)
}

// changedShard is the partition of GSI by_day that holds changed-set shard i.
func changedShard(i int) string { return fmt.Sprintf("%s%02d", changedPrefix, i) }

// changedShardKey is the changed-set shard of a device's byte items.
func changedShardKey(deviceID string) string {
	return changedShard(shardOf(deviceID, changedShards))
}

// counterAdd adds delta to a device's byte counter and puts the device in the changed set the
// byte purge reads (growth for the cap, any change for the fleet totals it folds), so the purge
// never scans for counters. ver counts the counter's changes: the purge clears the mark only when
// ver is still what it folded.
func counterAdd(table, deviceID string, delta int64) (types.TransactWriteItem, error) {
	return counterUpdate(table, deviceID, expression.Add(expression.Name("bytes"), expression.Value(delta)))
}

// counterMark puts a device in the changed set without changing its counter: a tail ledger item
// was deleted, so its totals moved.
func counterMark(table, deviceID string) (types.TransactWriteItem, error) {
	return counterUpdate(table, deviceID, expression.UpdateBuilder{})
}

func counterUpdate(table, deviceID string, upd expression.UpdateBuilder) (types.TransactWriteItem, error) {
	upd = upd.Set(expression.Name("device_id"), expression.Value(deviceID)).
		Add(expression.Name(counterVerAttr), expression.Value(1)).
		Set(expression.Name(resources.AttrGSI2PK), expression.Value(changedShardKey(deviceID))).
		Set(expression.Name(resources.AttrGSI2SK), expression.Value(deviceID))
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build counter update: %w", err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(table), Key: counterKey(deviceID), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

func retentionKey(sk string) map[string]types.AttributeValue {
	return itemKey(retentionPK, sk)
}

// reportItem holds the last purge report.
type reportItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Report string `dynamodbav:"report"`
}

// ttlMarker records that a TTL-deleted chunk's size was subtracted from its counter.
type ttlMarker struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
}

// wholeRun is the result of r's one command when it is r's own.
func wholeRun(r run.Run) run.CommandResult {
	return run.CommandResult{Command: r.Command, Status: r.Status, Reason: r.Reason, ExitStatus: r.ExitStatus, Bytes: r.Bytes}
}

// mirrorsRun reports whether r ran one command whose result is r's own (wholeRun), which a run
// item then stores as OneCmd: only where run.Results derives that same result from a run without
// Commands, as the indexes, which do not carry OneCmd, return it.
func mirrorsRun(r run.Run) bool {
	if len(r.Commands) != 1 || !r.Status.Terminal() || !run.Started(r.Status, r.Reason) || run.IsSummary(r.Command) {
		return false
	}
	c, w := r.Commands[0], wholeRun(r)
	sameExit := (c.ExitStatus == nil) == (w.ExitStatus == nil) && (c.ExitStatus == nil || *c.ExitStatus == *w.ExitStatus)
	return sameExit && c.Command == w.Command && c.Status == w.Status && c.Reason == w.Reason && c.Bytes == w.Bytes && c.Offset == 0
}

// id is the run's id.
func (it runItem) id() string { return runID(it.PK, it.ID) }

// jobID is the run's job's id.
func (it runItem) jobID() string {
	if it.NoJob {
		return ""
	}
	return jobIDOf(it.JobID, it.id(), it.DeviceID)
}

// jobOf is the job of run id on device when the id says it (a job's run of a device is
// <job id>.<device id>), else "".
func jobOf(id, deviceID string) string {
	job, ok := strings.CutSuffix(id, "."+deviceID)
	if !ok || job == "" {
		return ""
	}
	return job
}

// jobIDOf is the job id an item stores (jobID), or, left out as its run id says it (jobOf).
func jobIDOf(jobID, id, deviceID string) string {
	if jobID != "" {
		return jobID
	}
	return jobOf(id, deviceID)
}

// runID is the id of the run item keyed pk, which holds id unless it was written without it.
func runID(pk, id string) string {
	if id != "" {
		return id
	}
	return strings.TrimPrefix(pk, runPrefix)
}

// candidateItem is the part of a run item the purges read from the indexes.
type candidateItem struct {
	PK        string    `dynamodbav:"pk"`
	ID        string    `dynamodbav:"id"`
	DeviceID  string    `dynamodbav:"device_id"`
	JobID     string    `dynamodbav:"job_id"`
	Status    string    `dynamodbav:"status"`
	CreatedAt time.Time `dynamodbav:"created_at"`
	Bytes     int64     `dynamodbav:"bytes"`
	Chunks    int       `dynamodbav:"chunks"`
	TailSize  int64     `dynamodbav:"tail_size"`
}

// candidateAttrs are candidateItem's attributes, which both indexes carry.
var candidateAttrs = []string{"id", "device_id", "job_id", "status", "created_at", "bytes", "chunks", tailSizeAttr}

// The byte ledger: the operations on a device's byte items that the run store and the retention
// store share.

// byteLedger is what a device's stored bytes are made of.
type byteLedger struct {
	// Total is the counter plus every tail item: the device's output bytes, charged to it.
	Total int64
	// Kept is what of Total its runs store themselves: all but the bodies stored once.
	Kept int64
	// Counter is the counter item's bytes; CounterMarked says it is in the changed set; Ver
	// counts the counter's changes.
	Counter       int64
	CounterMarked bool
	Ver           int64
	// Folded is what the byte purge last added of this device to the fleet totals (zero before
	// the first fold).
	Folded run.Usage
	// MarkedTails are the sort keys of the tail items still in the changed set.
	MarkedTails []string
}

// readByteLedger reads a device's counter and tail items, strongly consistent.
func readByteLedger(ctx context.Context, db API, table, deviceID string) (byteLedger, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(counterPrefix + deviceID))
	proj := expression.NamesList(expression.Name(resources.AttrSK), expression.Name("bytes"), expression.Name("kept"), expression.Name(resources.AttrGSI2PK),
		expression.Name(counterVerAttr), expression.Name(foldedChargedAttr), expression.Name(foldedStoredAttr))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).WithProjection(proj).Build()
	if err != nil {
		return byteLedger{}, fmt.Errorf("build query: %w", err)
	}
	items, err := queryAll[struct {
		SK     string `dynamodbav:"sk"`
		Bytes  int64  `dynamodbav:"bytes"`
		Kept   *int64 `dynamodbav:"kept"`
		Marked string `dynamodbav:"gsi2pk"`
		Ver    int64  `dynamodbav:"ver"`
		FoldC  int64  `dynamodbav:"folded_charged"`
		FoldS  int64  `dynamodbav:"folded_stored"`
	}](ctx, db, &dynamodb.QueryInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}, "byte counter of "+deviceID)
	if err != nil {
		return byteLedger{}, err
	}
	var l byteLedger
	for _, it := range items {
		switch {
		case it.SK == counterSK:
			l.Counter, l.CounterMarked, l.Ver = it.Bytes, it.Marked != "", it.Ver
			l.Folded = run.Usage{ChargedBytes: it.FoldC, StoredBytes: it.FoldS}
		case strings.HasPrefix(it.SK, tailPrefix):
			if it.Marked != "" {
				l.MarkedTails = append(l.MarkedTails, it.SK)
			}
		default:
			continue
		}
		l.Total += it.Bytes
		if it.Kept != nil {
			l.Kept += *it.Kept
		} else {
			l.Kept += it.Bytes
		}
	}
	return l, nil
}

// chunkSizes lists the chunks of a run, strongly consistent.
func chunkSizes(ctx context.Context, db API, table, runID string) ([]chunkRef, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(runPrefix + runID)).
		And(expression.Key(resources.AttrSK).BeginsWith(chunkPrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).
		WithProjection(expression.NamesList(expression.Name(resources.AttrSK), expression.Name("size"))).Build()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return queryAll[chunkRef](ctx, db, &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: expr.KeyCondition(),
		ProjectionExpression: expr.Projection(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ConsistentRead: aws.Bool(true),
	}, "chunks of "+runID)
}

// chunkDelete deletes a chunk on condition that it exists, so its bytes are subtracted once.
func chunkDelete(table, runID, sk string) (types.TransactWriteItem, error) {
	cond, err := buildCondition(itemExists())
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: aws.String(table), Key: chunkKey(runID, sk),
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	}}, nil
}

// deleteChunk deletes one chunk and decrements the counter in one transaction; a chunk that is
// already gone changes nothing, so concurrent or repeated deletes never decrement twice. It
// reports whether this call deleted the chunk.
func deleteChunk(ctx context.Context, db API, table, runID, deviceID, sk string, size int64) (bool, error) {
	del, err := chunkDelete(table, runID, sk)
	if err != nil {
		return false, err
	}
	sub, err := counterAdd(table, deviceID, -size)
	if err != nil {
		return false, err
	}
	if err := transact(ctx, db, del, sub); err != nil {
		if onlyConditionFailed(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete chunk %s of %s: %w", sk, runID, err)
	}
	return true, nil
}
