package dynamo

import (
	"context"
	"errors"
	"fmt"
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

// RunStore keeps runs, their output chunks and the per-device byte counters in the runs table
// (runs_table.go holds its layout).
type RunStore struct {
	db    API
	table string
	// Lease is how long a started run is protected from being taken over by a redelivered
	// message; it must exceed the executor's timeout so a live attempt is never taken over.
	Lease time.Duration
	now   func() time.Time

	blobs *blobStore

	starts      *coalescer[*startReq]
	newStarts   *coalescer[*startReq]
	finishes    *coalescer[*finishReq]
	newFinishes *coalescer[*finishReq]
	previousIns *coalescer[*previousInReq]

	// unmarked is set once UNMARKED_SINCE is known to be stored (markUnmarkedSince).
	unmarkedMu sync.Mutex
	unmarked   bool
	// legacyCmds is whether GSI by_command may hold runs (entries.go).
	legacyCmds legacyCommands
}

// NewRunStore returns a store over the named runs table.
func NewRunStore(db API, table string, lease time.Duration) (*RunStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new run store: client and table name are required")
	}
	if lease <= 0 {
		return nil, errors.New("new run store: lease must be positive")
	}
	s := &RunStore{db: db, table: table, Lease: lease, now: func() time.Time { return time.Now().UTC() }, blobs: newBlobStore(db, table)}
	s.starts = newCoalescer(5*time.Millisecond, 50, s.startMany)
	s.newStarts = newCoalescer(5*time.Millisecond, 50, s.startNewMany)
	s.finishes = newCoalescer(10*time.Millisecond, 33, s.finishMany)
	s.newFinishes = newCoalescer(10*time.Millisecond, 50, s.finishNewMany)
	s.previousIns = newCoalescer(5*time.Millisecond, maxBatchGetKeys, s.previousInMany)
	return s, nil
}

// Start records r as running (see run.Store). It returns run.ErrLeased while a previous attempt's
// lease has not expired, and run.ErrFinished with the stored run when the run has finished.
// Starts that arrive together are written in one transaction.
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

// startNewMany writes new runs with batch writes.
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
		writes = appendPuts(writes, item)
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
	absent, err := buildCondition(itemAbsent())
	if err != nil {
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
		item, err := attributevalue.MarshalMap(toRunItem(r, r.LeaseUntil))
		if err != nil {
			return one()
		}
		started[i] = r
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names(),
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
	item, err := attributevalue.MarshalMap(toRunItem(r, r.LeaseUntil))
	if err != nil {
		return run.Run{}, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	absent, err := buildCondition(itemAbsent())
	if err != nil {
		return run.Run{}, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return r, nil
	}
	stored, failed := conditionFailedItem(err)
	if !failed {
		return run.Run{}, fmt.Errorf("start run %s: %w", r.ID, err)
	}
	var old runItem
	if err := attributevalue.UnmarshalMap(stored, &old); err != nil {
		return run.Run{}, fmt.Errorf("unmarshal run %s: %w", r.ID, err)
	}
	if run.Status(old.Status).Terminal() {
		return old.run(), run.ErrFinished
	}
	if old.LeaseUntil > now.UnixMilli() {
		return old.run(), run.ErrLeased
	}
	// The previous attempt died: drop its partial output, then take the run over.
	if err := s.deleteChunks(ctx, old.id(), old.DeviceID); err != nil {
		return run.Run{}, err
	}
	r.Attempt = old.Attempt + 1
	r.CreatedAt = old.CreatedAt
	item, err = attributevalue.MarshalMap(toRunItem(r, r.LeaseUntil))
	if err != nil {
		return run.Run{}, fmt.Errorf("marshal run %s: %w", r.ID, err)
	}
	sameAttempt, err := buildCondition(expression.Name("attempt").Equal(expression.Value(old.Attempt)))
	if err != nil {
		return run.Run{}, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: sameAttempt.Condition(), ExpressionAttributeNames: sameAttempt.Names(), ExpressionAttributeValues: sameAttempt.Values(),
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

// AppendChunk stores chunk seq and adds its size to the device's counter in one transaction; a
// chunk stored already is left as it is and counted once.
func (s *RunStore) AppendChunk(ctx context.Context, r run.Run, seq int, data []byte) error {
	item, err := attributevalue.MarshalMap(chunkItem{
		PK: runPrefix + r.ID, SK: chunkSK(seq), Data: data, Size: len(data), DeviceID: r.DeviceID, ExpiresAt: expiry(r.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("marshal chunk %d of run %s: %w", seq, r.ID, err)
	}
	absent, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	add, err := counterAdd(s.table, r.DeviceID, int64(len(data)))
	if err != nil {
		return err
	}
	err = transact(ctx, s.db, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names(),
	}}, add)
	if err != nil && !onlyConditionFailed(err) {
		return fmt.Errorf("append chunk %d of run %s: %w", seq, r.ID, err)
	}
	return nil
}

// Finish stores the run's terminal state together with its last, partial chunk (if any) and the
// counter increment, in one transaction. Finishes that arrive together share transactions. An
// output whose whole is data is stored once (share) before.
func (s *RunStore) Finish(ctx context.Context, r run.Run, data []byte) error {
	if !r.Status.Terminal() {
		return fmt.Errorf("finish run %s: status %q is not terminal", r.ID, r.Status)
	}
	req, err := s.finishRequest(ctx, r, data)
	if err != nil {
		return err
	}
	err = s.finishes.do(ctx, req)
	if req.ref != nil && errors.Is(err, run.ErrFinished) {
		// Another attempt holds or finished the run: drop this attempt's reference unless this
		// attempt's finish is the one stored (a finish retried after it was written).
		if derr := s.dropStaleRef(ctx, r, req.ref.Key); derr != nil {
			return errors.Join(err, derr)
		}
	}
	return err
}

type finishReq struct {
	r    run.Run
	data []byte
	ref  *sharedRef
}

// finishRequest is the finish of r with output data, the output stored once first when that is
// the store's rule for it (run.Share): its whole is data (no chunk was stored), it is large
// enough, and r has a previous run to compare with.
func (s *RunStore) finishRequest(ctx context.Context, r run.Run, data []byte) (*finishReq, error) {
	// The time since when tail items may be left out of the changed set is stored before this
	// store writes its first one.
	if err := s.markUnmarkedSince(ctx); err != nil {
		return nil, fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	req := &finishReq{r: r, data: append([]byte(nil), data...)}
	// Only an output the device gave before is stored once: a body pays for itself from its
	// second use, and a first, one-off or changed output (a fleet's show version, an interface
	// list with lease times) costs less inline, deflated, than a new body written in a
	// transaction. Unchanged means equal, noise filtered, to the previous run's (compare).
	if r.Chunks > 1 || int64(len(data)) != r.Bytes || r.PreviousRunID == "" || r.Changed == nil || *r.Changed {
		return req, nil
	}
	sh, ok := run.Share(req.data, r.NoiseLines, r.NoiseOK)
	if !ok {
		return req, nil
	}
	ref, err := s.blobs.reference(ctx, r, sh)
	if err != nil {
		return nil, fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	if err := s.blobs.dropEarlierRefs(ctx, sh.Key, r); err != nil {
		return nil, fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	req.ref = &ref
	return req, nil
}

// dropStaleRef drops attempt r's reference to body key unless the stored run is that attempt's,
// naming the body. The reference is the attempt's own: another attempt's, holding the run and
// about to write it, is never touched.
func (s *RunStore) dropStaleRef(ctx context.Context, r run.Run, key string) error {
	it, found, err := getItem[runItem](ctx, s.db, s.table, runKey(r.ID), "run "+r.ID)
	if err != nil {
		return err
	}
	if found && string(it.Blob) == key && it.Attempt == r.Attempt {
		return nil
	}
	return s.blobs.unref(ctx, key, r.ID, r.Attempt)
}

// finishedItems are the items of a finished run: the run item, carrying the output's last piece
// inline (or the reference to its body stored once), and its entry (entries.go): the tail ledger
// item that counts that piece in the device's bytes.
func finishedItems(req *finishReq, now time.Time) (item, tail map[string]types.AttributeValue, err error) {
	r, data := req.r, req.data
	item, kept, err := finishedRunItem(r, data, req.ref)
	if err != nil {
		return nil, nil, err
	}
	// The run's by_day entry puts its device in the changed set, unless it is written too long
	// after the run began for the purge's look back.
	late := len(data) > 0 && now.Sub(r.CreatedAt) > changedLag/2
	if tail, err = runEntry(r, int64(len(data)), kept, late); err != nil {
		return nil, nil, err
	}
	return item, tail, nil
}

// finishItems are the transaction items of one finish (finishedItems), the run item conditioned
// on this attempt.
func (s *RunStore) finishItems(req *finishReq) ([]types.TransactWriteItem, error) {
	r := req.r
	item, tail, err := finishedItems(req, s.now())
	if err != nil {
		return nil, err
	}
	// The run is this attempt's while it runs; a run never written (a bulk run that ended before
	// its running record was needed) is created finished.
	cond, err := buildCondition(expression.Or(itemAbsent(),
		expression.Name("attempt").Equal(expression.Value(r.Attempt)).
			And(expression.Name("status").Equal(expression.Value(string(run.Running))))))
	if err != nil {
		return nil, err
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
	req, err := s.finishRequest(ctx, r, data)
	if err != nil {
		return err
	}
	return s.newFinishes.do(ctx, req)
}

func (s *RunStore) finishNewMany(ctx context.Context, reqs []*finishReq) []error {
	errs := make([]error, len(reqs))
	now := s.now()
	var writes []types.WriteRequest
	for i, req := range reqs {
		item, tail, err := finishedItems(req, now)
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

// Reconcile makes a run's entry (its tail ledger item) agree with the run item after a FinishNew
// that a crash may have cut in half: a finished run gets its entry back, and an entry whose run
// does not exist is deleted. Each write is conditioned on the run item as
// it was read, so a concurrent purge or attempt is never undone.
func (s *RunStore) Reconcile(ctx context.Context, deviceID, runID string) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: runKey(runID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("reconcile run %s: %w", runID, err)
	}
	var it runItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return fmt.Errorf("reconcile run %s: %w", runID, err)
	}
	var (
		asRead expression.ConditionBuilder
		write  types.TransactWriteItem
	)
	switch {
	case len(out.Item) == 0:
		asRead = itemAbsent()
		write = types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table), Key: tailKey(deviceID, runID)}}
	case run.Status(it.Status).Terminal():
		asRead = expression.Name("status").Equal(expression.Value(it.Status))
		kept := it.TailSize
		switch {
		case it.TailSize == 0:
			asRead = asRead.And(expression.AttributeNotExists(expression.Name(tailSizeAttr)))
		case it.Blob != "":
			kept = int64(len(it.Noise))
		case it.PackedTail != nil:
			kept = int64(len(it.PackedTail))
		}
		if it.TailSize > 0 {
			asRead = asRead.And(expression.Name(tailSizeAttr).Equal(expression.Value(it.TailSize)))
		}
		entry, err := runEntry(it.run(), it.TailSize, kept, it.TailSize > 0)
		if err != nil {
			return err
		}
		// Put only when missing: an existing item may already have left the changed set.
		absent, err := buildCondition(itemAbsent())
		if err != nil {
			return err
		}
		write = types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: entry,
			ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names()}}
	default:
		return nil // running: no entry belongs to it yet
	}
	cond, err := buildCondition(asRead)
	if err != nil {
		return err
	}
	check := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: aws.String(s.table), Key: runKey(runID),
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	}}
	if write.Put != nil && (it.GSI3PK != "" || it.GSI1PK != "") {
		// A run from before entries, in GSI by_command and by_device's DEV#<device>: with its
		// entry it leaves them, or it would be listed twice.
		upd, err := expression.NewBuilder().WithCondition(asRead).WithUpdate(
			expression.Remove(expression.Name(resources.AttrGSI1PK)).Remove(expression.Name(resources.AttrGSI1SK)).
				Remove(expression.Name(resources.AttrGSI3PK)).Remove(expression.Name(resources.AttrGSI3SK))).Build()
		if err != nil {
			return fmt.Errorf("build update: %w", err)
		}
		check = types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: runKey(runID), UpdateExpression: upd.Update(),
			ConditionExpression: upd.Condition(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
		}}
	}
	items := []types.TransactWriteItem{check, write}
	if write.Delete != nil { // the device's totals move: mark it changed
		mark, err := counterMark(s.table, deviceID)
		if err != nil {
			return err
		}
		items = append(items, mark)
	}
	if err := transact(ctx, s.db, items...); err != nil && !onlyConditionFailed(err) {
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
				errs[i] = s.finishOne(ctx, reqs[i])
			}
		}
		group, items, size, devices = nil, nil, 0, map[string]bool{}
	}
	for i, req := range reqs {
		its, err := s.finishItems(req)
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

// markUnmarkedSince stores, before this store writes its first tail item outside the changed set,
// the time since when such items exist (UNMARKED_SINCE), unless an earlier time is stored: the
// byte purge never looks for runs before it. One conditional put per store.
func (s *RunStore) markUnmarkedSince(ctx context.Context) error {
	s.unmarkedMu.Lock()
	defer s.unmarkedMu.Unlock()
	if s.unmarked {
		return nil
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	item := retentionKey(unmarkedSK)
	item["at"] = &types.AttributeValueMemberS{Value: s.now().Format(timeLayout)}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("store when tail items left the changed set: %w", err)
	}
	s.unmarked = true
	return nil
}

// finishOne stores one run's terminal state with its last chunk in one transaction.
func (s *RunStore) finishOne(ctx context.Context, req *finishReq) error {
	r := req.r
	items, err := s.finishItems(req)
	if err != nil {
		return err
	}
	if err := transact(ctx, s.db, items...); err != nil {
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

// DeviceBytes returns the device's output bytes: its counter and its tail items.
func (s *RunStore) DeviceBytes(ctx context.Context, deviceID string) (int64, error) {
	l, err := readByteLedger(ctx, s.db, s.table, deviceID)
	return l.Total, err
}

// DeviceUsage returns what a device's runs are charged and what they store themselves (all but
// the bodies of outputs stored once, which are shared), strongly consistent.
func (s *RunStore) DeviceUsage(ctx context.Context, deviceID string) (run.Usage, error) {
	l, err := readByteLedger(ctx, s.db, s.table, deviceID)
	if err != nil {
		return run.Usage{}, err
	}
	return run.Usage{ChargedBytes: l.Total, StoredBytes: l.Kept}, nil
}

// SharedBytes returns the bytes of every body of an output stored once.
func (s *RunStore) SharedBytes(ctx context.Context) (int64, error) { return s.blobs.storedBytes(ctx) }

// WriteOutput streams a run's stored output, in order, to w: its chunks, then the tail kept in
// the run item (which sorts after them).
func (s *RunStore) WriteOutput(ctx context.Context, id string, w interface{ Write([]byte) (int, error) }) error {
	return s.writeOutput(ctx, id, 0, -1, 0, w)
}

// WriteOutputRange streams n bytes of run r's stored output from offset (one command's output,
// run.CommandResult), reading only the chunks that hold them, and the run item's tail only when
// they reach it.
func (s *RunStore) WriteOutputRange(ctx context.Context, r run.Run, offset, n int64, w interface{ Write([]byte) (int, error) }) error {
	if offset < 0 || n < 0 {
		return fmt.Errorf("output range %d+%d of %s is negative", offset, n, r.ID)
	}
	if n == 0 {
		return nil
	}
	return s.writeOutput(ctx, r.ID, offset, offset+n, r.Bytes, w)
}

// writeOutput streams the output bytes [from, to) of a run of total bytes (to < 0: all of it).
// Every stored chunk holds exactly run.ChunkSize bytes, so chunk k holds [k*ChunkSize,
// (k+1)*ChunkSize) and the tail, in the run item, starts after the last full chunk.
func (s *RunStore) writeOutput(ctx context.Context, id string, from, to, total int64, w interface{ Write([]byte) (int, error) }) error {
	first := int(from / run.ChunkSize)
	upper := runMetaSK // the tail sorts after every chunk
	if full := total / run.ChunkSize; to >= 0 && to <= full*run.ChunkSize {
		upper = chunkSK(int((to - 1) / run.ChunkSize)) // the range ends before the tail
	}
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(runPrefix + id)).
		And(expression.Key(resources.AttrSK).Between(expression.Value(chunkSK(first)), expression.Value(upper)))
	if from == 0 && to < 0 {
		kc = expression.Key(resources.AttrPK).Equal(expression.Value(runPrefix + id))
	}
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	pos := int64(first) * run.ChunkSize // where the next piece starts in the output
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query output of %s: %w", id, err)
		}
		var pieces []struct {
			SK      string   `dynamodbav:"sk"`
			Data    []byte   `dynamodbav:"data"`
			Tail    []byte   `dynamodbav:"tail"`
			Packed  []byte   `dynamodbav:"tail_z"`
			Size    int64    `dynamodbav:"tail_size"`
			Blob    hexBytes `dynamodbav:"blob"`
			BlobGen hexBytes `dynamodbav:"blob_gen"`
			Noise   []byte   `dynamodbav:"noise"`
		}
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &pieces); err != nil {
			return fmt.Errorf("unmarshal output of %s: %w", id, err)
		}
		for _, it := range pieces {
			var piece []byte
			switch {
			case strings.HasPrefix(it.SK, chunkPrefix):
				if piece = it.Data; piece == nil {
					return fmt.Errorf("output chunk %s of %s has no data", it.SK, id)
				}
			case it.SK == runMetaSK && it.Blob != "":
				// The whole output, stored once: its body and the run's noise lines.
				body, err := s.blobs.body(ctx, string(it.Blob), string(it.BlobGen))
				if err != nil {
					return fmt.Errorf("output of %s: %w", id, err)
				}
				noise, err := run.DecodeNoise(it.Noise)
				if err != nil {
					return fmt.Errorf("output of %s: %w", id, err)
				}
				if piece, err = run.Join(body, noise); err != nil {
					return fmt.Errorf("output of %s: %w", id, err)
				}
			case it.SK == runMetaSK && it.Packed != nil:
				if piece, err = unpackTail(it.Packed, it.Size); err != nil {
					return fmt.Errorf("output of %s: %w", id, err)
				}
			case it.SK == runMetaSK:
				if piece = it.Tail; piece == nil {
					continue // no tail (yet)
				}
			default:
				continue
			}
			start, end := pos, pos+int64(len(piece))
			pos = end
			lo, hi := max(from, start), end
			if to >= 0 {
				hi = min(to, end)
			}
			if lo >= hi {
				if to >= 0 && start >= to {
					return nil
				}
				continue
			}
			if _, err := w.Write(piece[lo-start : hi-start]); err != nil {
				return fmt.Errorf("write output of %s: %w", id, err)
			}
		}
	}
	return nil
}

// unexpired returns the runs of items that have not expired (expired ones wait for TTL).
func (s *RunStore) unexpired(items []runItem) []run.Run {
	now := s.now().Unix()
	runs := make([]run.Run, 0, len(items))
	for _, it := range items {
		if it.ExpiresAt > 0 && it.ExpiresAt <= now {
			continue
		}
		runs = append(runs, it.run())
	}
	return runs
}

// Abandon marks a run that will never finish (its batch went to the dead-letter queue) as
// failed with reason, with its entry (entries.go), in one transaction conditioned on the run as
// read; a terminal or missing run is left alone.
func (s *RunStore) Abandon(ctx context.Context, id, reason string) error {
	it, found, err := getItem[runItem](ctx, s.db, s.table, runKey(id), "run "+id)
	if err != nil || !found || run.Status(it.Status) != run.Running {
		return err
	}
	now := s.now()
	r := it.run()
	r.Status, r.Reason, r.FinishedAt = run.Failed, reason, &now
	entry, err := runEntry(r, 0, 0, false)
	if err != nil {
		return err
	}
	upd := expression.Set(expression.Name("status"), expression.Value(string(run.Failed))).
		Set(expression.Name("reason"), expression.Value(reason)).
		Set(expression.Name("finished_at"), expression.Value(now)).
		Remove(expression.Name("lease_until")).
		Remove(expression.Name(resources.AttrGSI1PK)).Remove(expression.Name(resources.AttrGSI1SK))
	expr, err := expression.NewBuilder().WithUpdate(upd).
		WithCondition(expression.Name("status").Equal(expression.Value(string(run.Running))).
			And(expression.Name("attempt").Equal(expression.Value(it.Attempt)))).Build()
	if err != nil {
		return fmt.Errorf("build update: %w", err)
	}
	err = transact(ctx, s.db,
		types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: runKey(id),
			UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: entry}})
	if err != nil && !onlyConditionFailed(err) {
		return fmt.Errorf("abandon run %s: %w", id, err)
	}
	return nil
}

// previousIndexed is Previous among the runs finished before entries, in GSI by_command: the
// newest succeeded run of r's command on r's device created before r that ran the same commands
// (run.SameCommands: sequences sharing a summary share the partition), eventually consistent.
func (s *RunStore) previousIndexed(ctx context.Context, r run.Run) (run.Run, error) {
	// Written out rather than built (expression.Builder): every device-run asks this once.
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(resources.IndexRunsByCommand),
		KeyConditionExpression:   aws.String("#p = :p AND #s < :s"),
		ExpressionAttributeNames: map[string]string{"#p": resources.AttrGSI3PK, "#s": resources.AttrGSI3SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: commandPartition(r.DeviceID, r.Command)},
			// Created before r: sort keys are the creation time, after which older items add "#<id>".
			":s": &types.AttributeValueMemberS{Value: r.CreatedAt.UTC().Format(timeLayout)},
		},
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(1),
	}
	now := s.now().Unix()
	for range previousPages {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return run.Run{}, fmt.Errorf("query previous indexed run of %s: %w", r.ID, err)
		}
		var items []runItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
			return run.Run{}, fmt.Errorf("unmarshal previous run of %s: %w", r.ID, err)
		}
		for _, it := range items {
			if run.Status(it.Status) != run.Succeeded || it.id() == r.ID || it.ExpiresAt > 0 && it.ExpiresAt <= now {
				continue
			}
			if prev := it.run(); run.SameCommands(prev, r) {
				return prev, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey, in.Limit = out.LastEvaluatedKey, aws.Int32(25)
	}
	return run.Run{}, run.ErrNotFound
}
