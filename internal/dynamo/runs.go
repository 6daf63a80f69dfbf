package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// Item layout of the runs table:
//
//	RUN#<id>        META            the run (GSI by_device: DEV#<device> / <created>#<id>;
//	                                GSI by_day: DAY#<yyyy-mm-dd> / <created>#<id>)
//	                                The output's last piece (under ChunkSize) is kept inline in
//	                                META (tail, tail_size): a short output costs no extra item.
//	RUN#<id>        CHUNK#<000000>  one full output chunk (ChunkSize bytes), in order
//	DEVBYTES#<dev>  COUNTER         the device's stored chunk bytes (bytes); while it has grown
//	                                since the byte-cap purge last looked, it is also in GSI by_day
//	                                under DEVCHG#<shard 00-15> / <dev> (see retention.go)
//	DEVBYTES#<dev>  TAIL#<run id>   the run's inline tail bytes (bytes): the ledger item that
//	                                counts them, living exactly as long as the run item, in GSI
//	                                by_day under DEVCHG#<shard> / <dev>#<run id> until the byte-cap
//	                                purge has looked. A device's stored bytes are its COUNTER plus
//	                                its TAIL# items (deviceBytes), so a run can be finished with a
//	                                plain batch write of two puts instead of a transaction.
//	RETENTION       AGE_WATERMARK   the last day the age purge has wholly purged (retention.go)
//	RETENTION       REPORT          the last purge report (retention.go)
//	TTLDEL#RUN#<id> TTLDEL#CHUNK#<n> a TTL-deleted chunk already subtracted from its counter
const (
	runPrefix      = "RUN#"
	runMetaSK      = "META"
	chunkPrefix    = "CHUNK#"
	counterPrefix  = "DEVBYTES#"
	counterSK      = "COUNTER"
	tailPrefix     = "TAIL#"
	devIndexPrefix = "DEV#"
	dayIndexPrefix = "DAY#"
)

// RunStore keeps runs, their output chunks and the per-device byte counters in the runs table.
type RunStore struct {
	db    API
	table string
	// Lease is how long a started run is protected from being taken over by a redelivered
	// message; it must exceed the executor's timeout so a live attempt is never taken over.
	Lease time.Duration
	now   func() time.Time

	starts      *coalescer[*startReq]
	newStarts   *coalescer[*startReq]
	finishes    *coalescer[*finishReq]
	newFinishes *coalescer[*finishReq]
}

// NewRunStore returns a store over the named runs table.
func NewRunStore(db API, table string, lease time.Duration) (*RunStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new run store: client and table name are required")
	}
	if lease <= 0 {
		return nil, errors.New("new run store: lease must be positive")
	}
	s := &RunStore{db: db, table: table, Lease: lease, now: func() time.Time { return time.Now().UTC() }}
	s.starts = newCoalescer(5*time.Millisecond, 50, s.startMany)
	s.newStarts = newCoalescer(5*time.Millisecond, 50, s.startNewMany)
	s.finishes = newCoalescer(10*time.Millisecond, 33, s.finishMany)
	s.newFinishes = newCoalescer(10*time.Millisecond, 50, s.finishNewMany)
	return s, nil
}

type runItem struct {
	PK          string     `dynamodbav:"pk"`
	SK          string     `dynamodbav:"sk"`
	GSI1PK      string     `dynamodbav:"gsi1pk"`
	GSI1SK      string     `dynamodbav:"gsi1sk"`
	GSI2PK      string     `dynamodbav:"gsi2pk"`
	GSI2SK      string     `dynamodbav:"gsi2sk"`
	ID          string     `dynamodbav:"id"`
	DeviceID    string     `dynamodbav:"device_id"`
	Command     string     `dynamodbav:"command"`
	JobID       string     `dynamodbav:"job_id,omitempty"`
	RequestedBy string     `dynamodbav:"requested_by"`
	Status      string     `dynamodbav:"status"`
	Reason      string     `dynamodbav:"reason,omitempty"`
	Message     string     `dynamodbav:"message,omitempty"`
	ExitStatus  *int       `dynamodbav:"exit_status,omitempty"`
	Bytes       int64      `dynamodbav:"bytes"`
	Chunks      int        `dynamodbav:"chunks"`
	Truncated   bool       `dynamodbav:"truncated"`
	Digest      string     `dynamodbav:"digest,omitempty"`
	Attempt     int        `dynamodbav:"attempt"`
	LeaseUntil  int64      `dynamodbav:"lease_until"`
	CreatedAt   time.Time  `dynamodbav:"created_at"`
	StartedAt   *time.Time `dynamodbav:"started_at,omitempty"`
	FinishedAt  *time.Time `dynamodbav:"finished_at,omitempty"`
	ConnectMS   int64      `dynamodbav:"connect_ms"`
	AuthMS      int64      `dynamodbav:"auth_ms"`
	FirstByteMS int64      `dynamodbav:"first_byte_ms"`
	TotalMS     int64      `dynamodbav:"total_ms"`
	ExpiresAt   int64      `dynamodbav:"expires_at,omitempty"`
}

func runKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		resources.AttrPK: &types.AttributeValueMemberS{Value: runPrefix + id},
		resources.AttrSK: &types.AttributeValueMemberS{Value: runMetaSK},
	}
}

// bytesKey is the key of one of a device's byte items: its counter or a tail ledger item.
func bytesKey(deviceID, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		resources.AttrPK: &types.AttributeValueMemberS{Value: counterPrefix + deviceID},
		resources.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func counterKey(deviceID string) map[string]types.AttributeValue {
	return bytesKey(deviceID, counterSK)
}

func chunkSK(seq int) string { return fmt.Sprintf("%s%06d", chunkPrefix, seq) }

func tailKey(deviceID, runID string) map[string]types.AttributeValue {
	return bytesKey(deviceID, tailPrefix+runID)
}

// tailItem is the ledger item counting n bytes of run runID's inline tail in its device's bytes,
// marked changed for the byte-cap purge.
func tailItem(deviceID, runID string, n int64) map[string]types.AttributeValue {
	it := tailKey(deviceID, runID)
	it["device_id"] = &types.AttributeValueMemberS{Value: deviceID}
	it["bytes"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	it[resources.AttrGSI2PK] = &types.AttributeValueMemberS{Value: changedShardKey(deviceID)}
	it[resources.AttrGSI2SK] = &types.AttributeValueMemberS{Value: deviceID + "#" + runID}
	return it
}

// byteLedger is what a device's stored bytes are made of.
type byteLedger struct {
	// Total is the counter plus every tail item: the device's stored output bytes.
	Total int64
	// Counter is the counter item's bytes; CounterMarked says it is in the changed set.
	Counter       int64
	CounterMarked bool
	// MarkedTails are the sort keys of the tail items still in the changed set.
	MarkedTails []string
}

// readByteLedger reads a device's counter and tail items, strongly consistent.
func readByteLedger(ctx context.Context, db API, table, deviceID string) (byteLedger, error) {
	var l byteLedger
	var start map[string]types.AttributeValue
	for {
		out, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:   aws.String("#pk = :pk"),
			ProjectionExpression:     aws.String("#sk, #b, #cp"),
			ExpressionAttributeNames: map[string]string{"#pk": resources.AttrPK, "#sk": resources.AttrSK, "#b": "bytes", "#cp": resources.AttrGSI2PK},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: counterPrefix + deviceID},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return l, fmt.Errorf("read byte counter of %s: %w", deviceID, err)
		}
		var items []struct {
			SK     string `dynamodbav:"sk"`
			Bytes  int64  `dynamodbav:"bytes"`
			Marked string `dynamodbav:"gsi2pk"`
		}
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
			return l, fmt.Errorf("unmarshal byte counter of %s: %w", deviceID, err)
		}
		for _, it := range items {
			switch {
			case it.SK == counterSK:
				l.Counter, l.CounterMarked = it.Bytes, it.Marked != ""
			case strings.HasPrefix(it.SK, tailPrefix):
				if it.Marked != "" {
					l.MarkedTails = append(l.MarkedTails, it.SK)
				}
			default:
				continue
			}
			l.Total += it.Bytes
		}
		if len(out.LastEvaluatedKey) == 0 {
			return l, nil
		}
		start = out.LastEvaluatedKey
	}
}

func toRunItem(r run.Run, leaseUntil time.Time) runItem {
	created := r.CreatedAt.UTC().Format(timeLayout) + "#" + r.ID
	return runItem{
		PK: runPrefix + r.ID, SK: runMetaSK,
		GSI1PK: devIndexPrefix + r.DeviceID, GSI1SK: created,
		GSI2PK: dayIndexPrefix + r.CreatedAt.UTC().Format("2006-01-02"), GSI2SK: created,
		ID: r.ID, DeviceID: r.DeviceID, Command: r.Command, JobID: r.JobID, RequestedBy: r.RequestedBy,
		Status: string(r.Status), Reason: r.Reason, Message: r.Message, ExitStatus: r.ExitStatus,
		Bytes: r.Bytes, Chunks: r.Chunks, Truncated: r.Truncated, Digest: r.OutputDigest, Attempt: r.Attempt,
		LeaseUntil: leaseUntil.UnixMilli(), CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		ConnectMS: r.Timings.ConnectMS, AuthMS: r.Timings.AuthMS, FirstByteMS: r.Timings.FirstByteMS, TotalMS: r.Timings.TotalMS,
		ExpiresAt: expiry(r.ExpiresAt),
	}
}

func (it runItem) run() run.Run {
	r := run.Run{
		ID: it.ID, DeviceID: it.DeviceID, Command: it.Command, JobID: it.JobID, RequestedBy: it.RequestedBy,
		Status: run.Status(it.Status), Reason: it.Reason, Message: it.Message, ExitStatus: it.ExitStatus,
		Bytes: it.Bytes, Chunks: it.Chunks, Truncated: it.Truncated, OutputDigest: it.Digest, Attempt: it.Attempt,
		CreatedAt: it.CreatedAt, StartedAt: it.StartedAt, FinishedAt: it.FinishedAt,
		Timings: run.Timings{ConnectMS: it.ConnectMS, AuthMS: it.AuthMS, FirstByteMS: it.FirstByteMS, TotalMS: it.TotalMS},
	}
	if it.ExpiresAt > 0 {
		r.ExpiresAt = time.Unix(it.ExpiresAt, 0).UTC()
	}
	if it.LeaseUntil > 0 && run.Status(it.Status) == run.Running {
		r.LeaseUntil = time.UnixMilli(it.LeaseUntil).UTC()
	}
	return r
}

// Start records r as running (see run.Store). It returns run.ErrLeased while a previous attempt's
// lease has not expired. Starts that arrive together are written in one transaction.
func (s *RunStore) Start(ctx context.Context, r run.Run) (run.Run, error) {
	req := &startReq{r: r}
	if err := s.starts.do(ctx, req); err != nil {
		return req.out, err
	}
	return req.out, nil
}

// StartNew records a run that cannot exist yet as running (see bulk.RunStore): plain puts,
// many in one BatchWriteItem, with no condition to check.
func (s *RunStore) StartNew(ctx context.Context, r run.Run) (run.Run, error) {
	req := &startReq{r: r}
	if err := s.newStarts.do(ctx, req); err != nil {
		return run.Run{}, err
	}
	return req.out, nil
}

// startNewMany writes new runs 25 a call, retrying unprocessed ones.
func (s *RunStore) startNewMany(ctx context.Context, reqs []*startReq) []error {
	errs := make([]error, len(reqs))
	now := s.now()
	writes := make([]types.WriteRequest, 0, len(reqs))
	for i, req := range reqs {
		r := req.r
		r.Status, r.LeaseUntil, r.Attempt = run.Running, now.Add(s.Lease), 1
		if r.StartedAt == nil {
			r.StartedAt = &now
		}
		item, err := attributevalue.MarshalMap(toRunItem(r, r.LeaseUntil))
		if err != nil {
			errs[i] = fmt.Errorf("marshal run %s: %w", r.ID, err)
			continue
		}
		req.out = r
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if err := batchWrite(ctx, s.db, s.table, writes); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("start %d runs: %w", len(writes), err)
			}
		}
	}
	return errs
}

type startReq struct {
	r   run.Run
	out run.Run
}

// startMany writes first attempts of many runs in one transaction; if any of them exists already
// (a redelivery), every run goes the one-by-one way, which handles each case.
func (s *RunStore) startMany(ctx context.Context, reqs []*startReq) []error {
	errs := make([]error, len(reqs))
	one := func() []error {
		for i, req := range reqs {
			req.out, errs[i] = s.startOne(ctx, req.r)
		}
		return errs
	}
	if len(reqs) == 1 {
		return one()
	}
	now := s.now()
	items := make([]types.TransactWriteItem, 0, len(reqs))
	started := make([]run.Run, len(reqs))
	for i, req := range reqs {
		r := req.r
		r.Status, r.StartedAt, r.LeaseUntil = run.Running, &now, now.Add(s.Lease)
		if r.Attempt == 0 {
			r.Attempt = 1
		}
		item, err := attributevalue.MarshalMap(toRunItem(r, now.Add(s.Lease)))
		if err != nil {
			return one()
		}
		started[i] = r
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
	}
	if err := transact(ctx, s.db, items...); err != nil {
		return one()
	}
	for i, req := range reqs {
		req.out = started[i]
	}
	return errs
}

// startOne records one run as running, taking over a dead attempt's run.
func (s *RunStore) startOne(ctx context.Context, r run.Run) (run.Run, error) {
	now := s.now()
	r.Status = run.Running
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	r.StartedAt, r.LeaseUntil = &now, now.Add(s.Lease)
	item, err := attributevalue.MarshalMap(toRunItem(r, now.Add(s.Lease)))
	if err != nil {
		return run.Run{}, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return r, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return run.Run{}, fmt.Errorf("start run %s: %w", r.ID, err)
	}
	var old runItem
	if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
		return run.Run{}, fmt.Errorf("unmarshal run %s: %w", r.ID, err)
	}
	if run.Status(old.Status).Terminal() {
		return old.run(), run.ErrFinished
	}
	if old.LeaseUntil > now.UnixMilli() {
		return old.run(), run.ErrLeased
	}
	// The previous attempt died: drop its partial output, then take the run over.
	if err := s.deleteChunks(ctx, old.ID, old.DeviceID); err != nil {
		return run.Run{}, err
	}
	r.Attempt = old.Attempt + 1
	r.CreatedAt = old.CreatedAt
	item, err = attributevalue.MarshalMap(toRunItem(r, now.Add(s.Lease)))
	if err != nil {
		return run.Run{}, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	cond, err := expression.NewBuilder().WithCondition(expression.Name("attempt").Equal(expression.Value(old.Attempt))).Build()
	if err != nil {
		return run.Run{}, fmt.Errorf("build condition: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	})
	if isConditionFailed(err) {
		return old.run(), run.ErrLeased // another redelivery took it over first
	}
	if err != nil {
		return run.Run{}, fmt.Errorf("take over run %s: %w", r.ID, err)
	}
	return r, nil
}

// deleteChunks removes every chunk of a run, decrementing the device's counter with each.
func (s *RunStore) deleteChunks(ctx context.Context, runID, deviceID string) error {
	chunks, err := chunkSizes(ctx, s.db, s.table, runID)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if _, err := deleteChunk(ctx, s.db, s.table, runID, deviceID, c.SK, c.Size); err != nil {
			return err
		}
	}
	return nil
}

type chunkRef struct {
	SK   string `dynamodbav:"sk"`
	Size int64  `dynamodbav:"size"`
}

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

// deleteChunk deletes one chunk and decrements the counter in one transaction; a chunk that is
// already gone changes nothing, so concurrent or repeated deletes never decrement twice. It
// reports whether this call deleted the chunk.
func deleteChunk(ctx context.Context, db API, table, runID, deviceID, sk string, size int64) (bool, error) {
	err := transact(ctx, db, []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName: aws.String(table),
			Key: map[string]types.AttributeValue{
				resources.AttrPK: &types.AttributeValueMemberS{Value: runPrefix + runID},
				resources.AttrSK: &types.AttributeValueMemberS{Value: sk},
			},
			ConditionExpression: aws.String("attribute_exists(pk)"),
		}},
		counterAdd(table, deviceID, -size),
	}...)
	if err != nil {
		if onlyConditionFailed(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete chunk %s of %s: %w", sk, runID, err)
	}
	return true, nil
}

// counterAdd adds delta to a device's byte counter. A growing counter (delta > 0) also puts the
// device in the changed set the byte-cap purge reads, so the purge never scans for counters.
func counterAdd(table, deviceID string, delta int64) types.TransactWriteItem {
	expr := "ADD #b :n SET #d = :d"
	names := map[string]string{"#b": "bytes", "#d": "device_id"}
	values := map[string]types.AttributeValue{
		":n": &types.AttributeValueMemberN{Value: strconv.FormatInt(delta, 10)},
		":d": &types.AttributeValueMemberS{Value: deviceID},
	}
	if delta > 0 {
		expr += ", #cp = :cp, #cs = :d"
		names["#cp"], names["#cs"] = resources.AttrGSI2PK, resources.AttrGSI2SK
		values[":cp"] = &types.AttributeValueMemberS{Value: changedShardKey(deviceID)}
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(table), Key: counterKey(deviceID), UpdateExpression: aws.String(expr),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}}
}

func chunkPut(table string, r run.Run, seq int, data []byte) types.TransactWriteItem {
	item := map[string]types.AttributeValue{
		resources.AttrPK: &types.AttributeValueMemberS{Value: runPrefix + r.ID},
		resources.AttrSK: &types.AttributeValueMemberS{Value: chunkSK(seq)},
		"data":           &types.AttributeValueMemberB{Value: data},
		"size":           &types.AttributeValueMemberN{Value: strconv.Itoa(len(data))},
		"device_id":      &types.AttributeValueMemberS{Value: r.DeviceID},
	}
	if e := expiry(r.ExpiresAt); e > 0 {
		item[resources.TTLAttribute] = &types.AttributeValueMemberN{Value: strconv.FormatInt(e, 10)}
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}
}

// AppendChunk stores chunk seq and adds its size to the device's counter in one transaction.
func (s *RunStore) AppendChunk(ctx context.Context, r run.Run, seq int, data []byte) error {
	err := transact(ctx, s.db, []types.TransactWriteItem{
		chunkPut(s.table, r, seq, data),
		counterAdd(s.table, r.DeviceID, int64(len(data))),
	}...)
	if err != nil && !onlyConditionFailed(err) {
		return fmt.Errorf("append chunk %d of run %s: %w", seq, r.ID, err)
	}
	return nil
}

// Finish stores the run's terminal state together with its last, partial chunk (if any) and the
// counter increment, in one transaction. Finishes that arrive together share transactions.
func (s *RunStore) Finish(ctx context.Context, r run.Run, data []byte) error {
	if !r.Status.Terminal() {
		return fmt.Errorf("finish run %s: status %q is not terminal", r.ID, r.Status)
	}
	return s.finishes.do(ctx, &finishReq{r: r, data: append([]byte(nil), data...)})
}

type finishReq struct {
	r    run.Run
	data []byte
}

// Attributes of the inline output tail on a run item.
const (
	tailAttr     = "tail"
	tailSizeAttr = "tail_size"
)

// withTail stores data as the run item's inline output tail.
func withTail(item map[string]types.AttributeValue, data []byte) {
	if len(data) == 0 {
		return
	}
	item[tailAttr] = &types.AttributeValueMemberB{Value: data}
	item[tailSizeAttr] = &types.AttributeValueMemberN{Value: strconv.Itoa(len(data))}
}

// finishedItems are the items of a finished run: the run item, carrying the output's last piece
// inline, and, when there is one, the tail ledger item that counts it in the device's bytes.
func finishedItems(r run.Run, data []byte) (item, tail map[string]types.AttributeValue, err error) {
	item, err = attributevalue.MarshalMap(toRunItem(r, time.Time{}))
	if err != nil {
		return nil, nil, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	delete(item, "lease_until")
	withTail(item, data)
	if len(data) > 0 {
		tail = tailItem(r.DeviceID, r.ID, int64(len(data)))
	}
	return item, tail, nil
}

// finishItems are the transaction items of one finish (finishedItems), the run item conditioned
// on this attempt.
func (s *RunStore) finishItems(r run.Run, data []byte) ([]types.TransactWriteItem, error) {
	item, tail, err := finishedItems(r, data)
	if err != nil {
		return nil, err
	}
	// The run is this attempt's while it runs; a run never written (a bulk run that ended before
	// its running record was needed) is created finished.
	cond, err := expression.NewBuilder().WithCondition(expression.Or(
		expression.AttributeNotExists(expression.Name(resources.AttrPK)),
		expression.Name("attempt").Equal(expression.Value(r.Attempt)).
			And(expression.Name("status").Equal(expression.Value(string(run.Running)))))).Build()
	if err != nil {
		return nil, fmt.Errorf("build condition: %w", err)
	}
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	}}}
	if tail != nil {
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: tail}})
	}
	return items, nil
}

// appendPuts appends a put of each non-nil item to writes.
func appendPuts(writes []types.WriteRequest, items ...map[string]types.AttributeValue) []types.WriteRequest {
	for _, it := range items {
		if it != nil {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
	}
	return writes
}

// FinishNew stores a run that was never written, finished, with its tail ledger item, in a plain
// batch write. Only the holder of the run's batch's first lease may call it (see StartNew): no
// other attempt can have written the run, so it needs no condition, and the two puts need no
// transaction: a crash between them leaves the run finished without its ledger item, which the
// redelivery that follows puts back (Reconcile), or the ledger item without its run, which the
// redelivery overwrites when it runs the device again. Finishes that arrive together share calls.
func (s *RunStore) FinishNew(ctx context.Context, r run.Run, data []byte) error {
	if !r.Status.Terminal() {
		return fmt.Errorf("finish run %s: status %q is not terminal", r.ID, r.Status)
	}
	return s.newFinishes.do(ctx, &finishReq{r: r, data: append([]byte(nil), data...)})
}

func (s *RunStore) finishNewMany(ctx context.Context, reqs []*finishReq) []error {
	errs := make([]error, len(reqs))
	var writes []types.WriteRequest
	for i, req := range reqs {
		item, tail, err := finishedItems(req.r, req.data)
		if err != nil {
			errs[i] = err
			continue
		}
		writes = appendPuts(writes, item, tail)
	}
	if err := batchWrite(ctx, s.db, s.table, writes); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("finish new runs: %w", err)
			}
		}
	}
	return errs
}

// Reconcile makes a run's tail ledger item agree with the run item after a FinishNew that a
// crash may have cut in half: a finished run with an inline tail gets its ledger item back, and a
// ledger item whose run does not exist is deleted. Each write is conditioned on the run item as
// it was read, so a concurrent purge or attempt is never undone.
func (s *RunStore) Reconcile(ctx context.Context, deviceID, runID string) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: runKey(runID), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#st, #ts"), ExpressionAttributeNames: map[string]string{"#st": "status", "#ts": tailSizeAttr},
	})
	if err != nil {
		return fmt.Errorf("reconcile run %s: %w", runID, err)
	}
	var it struct {
		Status   string `dynamodbav:"status"`
		TailSize int64  `dynamodbav:"tail_size"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return fmt.Errorf("reconcile run %s: %w", runID, err)
	}
	check := &types.ConditionCheck{TableName: aws.String(s.table), Key: runKey(runID)}
	var write types.TransactWriteItem
	switch {
	case len(out.Item) == 0:
		check.ConditionExpression = aws.String("attribute_not_exists(pk)")
		write = types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table), Key: tailKey(deviceID, runID)}}
	case run.Status(it.Status).Terminal() && it.TailSize > 0:
		check.ConditionExpression = aws.String("#st = :st AND #ts = :ts")
		check.ExpressionAttributeNames = map[string]string{"#st": "status", "#ts": tailSizeAttr}
		check.ExpressionAttributeValues = map[string]types.AttributeValue{
			":st": &types.AttributeValueMemberS{Value: it.Status},
			":ts": &types.AttributeValueMemberN{Value: strconv.FormatInt(it.TailSize, 10)},
		}
		// Put only when missing: an existing item may already have left the changed set.
		write = types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: tailItem(deviceID, runID, it.TailSize),
			ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	default:
		return nil // running, or finished without a tail: no ledger item belongs to it
	}
	err = transact(ctx, s.db, []types.TransactWriteItem{{ConditionCheck: check}, write}...)
	if err != nil && !onlyConditionFailed(err) {
		return fmt.Errorf("reconcile run %s: %w", runID, err)
	}
	return nil
}

// A group of finishes sharing a transaction stays under finishGroupBytes of output, counting
// finishItemOverhead bytes for each finish's keys and attributes besides its output: a margin under
// maxTransactBytes.
const (
	finishGroupBytes   = maxTransactBytes - 1<<20
	finishItemOverhead = 2048
)

// finishMany writes many finishes in as few transactions as the limits allow (never two counter
// updates of one device in one transaction); a transaction that fails is redone finish by finish.
func (s *RunStore) finishMany(ctx context.Context, reqs []*finishReq) []error {
	errs := make([]error, len(reqs))
	var group []int
	var items []types.TransactWriteItem
	size := 0
	devices := map[string]bool{}
	flush := func() {
		if len(group) == 0 {
			return
		}
		var err error
		if len(group) > 1 {
			err = transact(ctx, s.db, items...)
		}
		if len(group) == 1 || err != nil {
			for _, i := range group {
				errs[i] = s.finishOne(ctx, reqs[i].r, reqs[i].data)
			}
		}
		group, items, size, devices = nil, nil, 0, map[string]bool{}
	}
	for i, req := range reqs {
		its, err := s.finishItems(req.r, req.data)
		if err != nil {
			errs[i] = err
			continue
		}
		if len(items)+len(its) > maxTransactItems || size+len(req.data) > finishGroupBytes || devices[req.r.DeviceID] {
			flush()
		}
		group = append(group, i)
		items = append(items, its...)
		size += len(req.data) + finishItemOverhead
		devices[req.r.DeviceID] = true
	}
	flush()
	return errs
}

// finishOne stores one run's terminal state with its last chunk in one transaction.
func (s *RunStore) finishOne(ctx context.Context, r run.Run, data []byte) error {
	items, err := s.finishItems(r, data)
	if err != nil {
		return err
	}
	err = transact(ctx, s.db, items...)
	if err != nil {
		if onlyConditionFailed(err) {
			return fmt.Errorf("finish run %s: %w", r.ID, run.ErrFinished)
		}
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	return nil
}

// Get returns one run; run.ErrNotFound when there is none or it has expired.
func (s *RunStore) Get(ctx context.Context, id string) (run.Run, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: runKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return run.Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	if out.Item == nil {
		return run.Run{}, run.ErrNotFound
	}
	var it runItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return run.Run{}, fmt.Errorf("unmarshal run %s: %w", id, err)
	}
	if it.ExpiresAt > 0 && it.ExpiresAt <= s.now().Unix() {
		return run.Run{}, run.ErrNotFound // expired, waiting for TTL to delete it
	}
	return it.run(), nil
}

// DeviceBytes returns the device's stored output bytes: its counter and its tail items.
func (s *RunStore) DeviceBytes(ctx context.Context, deviceID string) (int64, error) {
	l, err := readByteLedger(ctx, s.db, s.table, deviceID)
	return l.Total, err
}

// WriteOutput streams a run's stored output, in order, to w: its chunks, then the tail kept in
// the run item (which sorts after them).
func (s *RunStore) WriteOutput(ctx context.Context, id string, w interface{ Write([]byte) (int, error) }) error {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(runPrefix + id))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query output of %s: %w", id, err)
		}
		for _, item := range page.Items {
			sk, _ := item[resources.AttrSK].(*types.AttributeValueMemberS)
			var piece types.AttributeValue
			switch {
			case sk == nil:
				continue
			case strings.HasPrefix(sk.Value, chunkPrefix):
				if piece = item["data"]; piece == nil {
					return fmt.Errorf("output chunk of %s has no data", id)
				}
			case sk.Value == runMetaSK:
				if piece = item[tailAttr]; piece == nil {
					continue // no tail (yet)
				}
			default:
				continue
			}
			b, ok := piece.(*types.AttributeValueMemberB)
			if !ok {
				return fmt.Errorf("output of %s: %s holds no bytes", id, sk.Value)
			}
			if _, err := w.Write(b.Value); err != nil {
				return fmt.Errorf("write output of %s: %w", id, err)
			}
		}
	}
	return nil
}

// ListByDevice returns a device's runs, newest first, at most limit, after cursor.
func (s *RunStore) ListByDevice(ctx context.Context, deviceID, cursor string, limit int) ([]run.Run, string, error) {
	items, next, err := newestFirst[runItem](ctx, s.db, s.table, resources.IndexRunsByDevice, devIndexPrefix+deviceID, runPrefix, runMetaSK,
		cursor, limit, fault.ErrBadCursor, "runs of device "+deviceID)
	if err != nil {
		return nil, "", err
	}
	now := s.now().Unix()
	runs := make([]run.Run, 0, len(items))
	for _, it := range items {
		if it.ExpiresAt > 0 && it.ExpiresAt <= now {
			continue // expired, waiting for TTL
		}
		runs = append(runs, it.run())
	}
	return runs, next, nil
}

// Abandon marks a run that will never finish (its batch went to the dead-letter queue) as
// failed with reason; a terminal or missing run is left alone.
func (s *RunStore) Abandon(ctx context.Context, id, reason string) error {
	now := s.now()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: runKey(id),
		UpdateExpression:    aws.String("SET #st = :failed, reason = :why, finished_at = :now REMOVE lease_until"),
		ConditionExpression: aws.String("#st = :running"),
		ExpressionAttributeNames: map[string]string{
			"#st": "status",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":failed": &types.AttributeValueMemberS{Value: string(run.Failed)}, ":why": &types.AttributeValueMemberS{Value: reason},
			":now": &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)}, ":running": &types.AttributeValueMemberS{Value: string(run.Running)},
		},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("abandon run %s: %w", id, err)
	}
	return nil
}
