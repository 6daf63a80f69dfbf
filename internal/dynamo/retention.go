package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// RetentionStore is the runs (and jobs) table as the retention purge and the TTL stream consumer
// see them (runs_table.go holds the runs table's layout); it implements retention.Store and
// retention.Jobs.
type RetentionStore struct {
	db    API
	runs  string
	jobs  string
	now   func() time.Time
	blobs *blobStore
	// legacyCmds is whether the indexes may hold runs from before entries (entries.go).
	legacyCmds legacyCommands
}

// NewRetentionStore returns a store over the named runs and jobs tables.
func NewRetentionStore(db API, runsTable, jobsTable string) (*RetentionStore, error) {
	if db == nil || runsTable == "" || jobsTable == "" {
		return nil, errors.New("new retention store: client, runs and jobs table names are required")
	}
	return &RetentionStore{db: db, runs: runsTable, jobs: jobsTable, now: func() time.Time { return time.Now().UTC() }, blobs: newBlobStore(db, runsTable)}, nil
}

var (
	_ retention.Store = (*RetentionStore)(nil)
	_ retention.Jobs  = (*RetentionStore)(nil)
)

// AgeWatermark implements retention.Store.
func (s *RetentionStore) AgeWatermark(ctx context.Context) (time.Time, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.runs), Key: retentionKey(watermarkSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return time.Time{}, fmt.Errorf("get age watermark: %w", err)
	}
	var it struct {
		Day string `dynamodbav:"day"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return time.Time{}, fmt.Errorf("unmarshal age watermark: %w", err)
	}
	if it.Day == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, it.Day)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse age watermark %q: %w", it.Day, err)
	}
	return d, nil
}

// SetAgeWatermark implements retention.Store; it never moves the watermark backwards.
func (s *RetentionStore) SetAgeWatermark(ctx context.Context, day time.Time) error {
	return s.setForward(ctx, watermarkSK, "day", day.UTC().Format(time.DateOnly), "age watermark")
}

// setForward sets attr of the retention item sk to v unless it holds a value not before v
// (values that sort as they compare: dates and timeLayout times).
func (s *RetentionStore) setForward(ctx context.Context, sk, attr, v, what string) error {
	name := expression.Name(attr)
	expr, err := expression.NewBuilder().
		WithUpdate(expression.Set(name, expression.Value(v))).
		WithCondition(expression.AttributeNotExists(name).Or(name.LessThan(expression.Value(v)))).Build()
	if err != nil {
		return fmt.Errorf("build update: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.runs), Key: retentionKey(sk),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("set %s %s: %w", what, v, err)
	}
	return nil
}

// queryCandidates reads one page of runs from an index, keyed by gsiPK and gsiSK, after cursor.
func (s *RetentionStore) queryCandidates(ctx context.Context, index, gsiPK, gsiSK string, kc expression.KeyConditionBuilder, cursor string, limit int) ([]retention.Candidate, string, error) {
	items, last, err := s.queryIndexed(ctx, index, gsiPK, gsiSK, kc, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	cands := make([]retention.Candidate, 0, len(items))
	for _, raw := range items {
		c, err := candidateOf(raw)
		if err != nil {
			return nil, "", err
		}
		cands = append(cands, c)
	}
	next, err := encodeCursor(last)
	if err != nil {
		return nil, "", err
	}
	return cands, next, nil
}

// queryIndexed reads a page of an index's items with the purges' attributes, oldest first.
func (s *RetentionStore) queryIndexed(ctx context.Context, index, gsiPK, gsiSK string, kc expression.KeyConditionBuilder, cursor string, limit int) ([]map[string]types.AttributeValue, map[string]types.AttributeValue, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK, gsiPK, gsiSK)
	if !ok {
		return nil, nil, fault.ErrBadCursor
	}
	// Each index carries only its own keys besides the table's: the projection names those.
	names := []string{resources.AttrPK, resources.AttrSK, gsiPK, gsiSK}
	proj := expression.NamesList(expression.Name(names[0]))
	for _, n := range append(names[1:], candidateAttrs...) {
		proj = proj.AddNames(expression.Name(n))
	}
	expr, err := expression.NewBuilder().WithKeyCondition(kc).WithProjection(proj).Build()
	if err != nil {
		return nil, nil, fmt.Errorf("build query: %w", err)
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.runs), IndexName: aws.String(index),
		KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(true), Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return nil, nil, err
	}
	return out.Items, out.LastEvaluatedKey, nil
}

// candidateOf is the purge candidate an index item describes.
func candidateOf(raw map[string]types.AttributeValue) (retention.Candidate, error) {
	var it candidateItem
	if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
		return retention.Candidate{}, fmt.Errorf("unmarshal run: %w", err)
	}
	id := runID(it.PK, it.ID)
	return retention.Candidate{ID: id, DeviceID: it.DeviceID, JobID: jobIDOf(it.JobID, id, it.DeviceID), Status: run.Status(it.Status),
		CreatedAt: it.CreatedAt, Bytes: it.Bytes, Chunks: it.Chunks, InlineBytes: it.TailSize}, nil
}

// runItemCandidate is the purge candidate a run item read by key describes.
func runItemCandidate(it runItem) retention.Candidate {
	return retention.Candidate{ID: it.id(), DeviceID: it.DeviceID, JobID: it.jobID(), Status: run.Status(it.Status),
		CreatedAt: it.CreatedAt, Bytes: it.Bytes, Chunks: it.Chunks, InlineBytes: it.TailSize}
}

// dayPage reads a page of a by_day partition from cursor: its runs, and the runs of its run lists
// (runlists.go), the page's lists read in one call and the runs they name in as few as
// BatchGetItem allows. The page ends after the item that brings it to limit runs: a list of up to
// a batch of runs may take it past limit.
func (s *RetentionStore) dayPage(ctx context.Context, kc expression.KeyConditionBuilder, cursor string, limit int) ([]retention.Candidate, string, error) {
	items, last, err := s.queryIndexed(ctx, resources.IndexRunsByDay, resources.AttrGSI2PK, resources.AttrGSI2SK, kc, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	// listPKs[i] is item i's partition key when it is a run list.
	listPKs := make([]string, len(items))
	var pks []string
	for i, raw := range items {
		if pk, ok := raw[resources.AttrPK].(*types.AttributeValueMemberS); ok && isRunList(pk.Value) {
			listPKs[i] = pk.Value
			pks = append(pks, pk.Value)
		}
	}
	lists, err := readRunLists(ctx, s.db, s.runs, pks)
	if err != nil {
		return nil, "", err
	}
	var (
		cands []retention.Candidate
		ids   []string // the listed runs to read
	)
	for i, raw := range items {
		if pk := listPKs[i]; pk != "" {
			for _, r := range lists[pk] {
				ids = append(ids, r.ID)
			}
		} else {
			c, err := candidateOf(raw)
			if err != nil {
				return nil, "", err
			}
			cands = append(cands, c)
		}
		if len(cands)+len(ids) >= limit && i < len(items)-1 {
			last = map[string]types.AttributeValue{}
			for _, k := range []string{resources.AttrPK, resources.AttrSK, resources.AttrGSI2PK, resources.AttrGSI2SK} {
				last[k] = raw[k]
			}
			break
		}
	}
	listed, err := readRunItems(ctx, s.db, s.runs, ids)
	if err != nil {
		return nil, "", err
	}
	for _, it := range listed {
		cands = append(cands, runItemCandidate(it))
	}
	next, err := encodeCursor(last)
	if err != nil {
		return nil, "", err
	}
	return cands, next, nil
}

// RunsOfDay implements retention.Store with the by_day index: every shard of the day, then its
// legacy partition (runs written before the day was sharded), each oldest first and stopping at
// `before` by sort key. A run list there stands for its runs, which may have been created after
// `before` or on the next day, as they are created after it. A page fills up across partitions;
// the cursor names the partition and the position in it.
func (s *RetentionStore) RunsOfDay(ctx context.Context, day, before time.Time, cursor string, limit int) ([]retention.Candidate, string, error) {
	d := day.UTC().Format(time.DateOnly)
	cur, err := decodeShardCursor(cursor, dayShards+1)
	if err != nil {
		return nil, "", err
	}
	var cands []retention.Candidate
	for cur.Shard <= dayShards && len(cands) < limit {
		kc := expression.Key(resources.AttrGSI2PK).Equal(expression.Value(dayPartition(d, cur.Shard))).
			And(expression.Key(resources.AttrGSI2SK).LessThan(expression.Value(before.UTC().Format(timeLayout))))
		page, next, err := s.dayPage(ctx, kc, cur.Key, limit-len(cands))
		if err != nil {
			return nil, "", fmt.Errorf("query runs of day %s: %w", d, err)
		}
		cands = append(cands, page...)
		if next != "" {
			cur.Key = next
		} else {
			cur.Shard, cur.Key = cur.Shard+1, ""
		}
	}
	if cur.Shard > dayShards {
		return cands, "", nil
	}
	next, err := cur.encode()
	return cands, next, err
}

// RunsOfDevice implements retention.Store, oldest first: while the table may hold them, the runs
// written before entries (GSI by_device, DEV#<device>), then the device's finished runs by their
// entries, oldest job first, each read by key. Unfinished runs are not listed: the byte purge
// deletes finished runs only.
func (s *RetentionStore) RunsOfDevice(ctx context.Context, deviceID, cursor string, limit int) ([]retention.Candidate, string, error) {
	cur, err := decodePaged(capRunsKind, cursor, deviceID, 2)
	if err != nil || cur.Phase == 1 && cur.Key != "" && !entryPosition(cur.Key) {
		return nil, "", fault.ErrBadCursor
	}
	if cur.Phase == 0 {
		legacy, err := s.legacyCmds.get(ctx, s.db, s.runs, s.now())
		if err != nil {
			return nil, "", err
		}
		if legacy {
			kc := expression.Key(resources.AttrGSI1PK).Equal(expression.Value(devIndexPrefix + deviceID))
			cands, next, err := s.queryCandidates(ctx, resources.IndexRunsByDevice, resources.AttrGSI1PK, resources.AttrGSI1SK, kc, cur.Key, limit)
			if err != nil || next != "" {
				if next != "" {
					next, err = pagedCursor{Key: next, Dev: cur.Dev}.encode(capRunsKind)
				}
				return cands, next, err
			}
			next, err = pagedCursor{Phase: 1, Dev: cur.Dev}.encode(capRunsKind)
			return cands, next, err
		}
		cur = pagedCursor{Phase: 1, Dev: cur.Dev}
	}
	ids, last, done, err := readEntries(ctx, s.db, deviceEntriesQuery(s.runs, deviceID, cur.Key, true, false), limit, historyMinRead, false, "runs of device "+deviceID)
	if err != nil {
		return nil, "", err
	}
	items, err := readRunItems(ctx, s.db, s.runs, ids)
	if err != nil {
		return nil, "", err
	}
	cands := make([]retention.Candidate, len(items))
	for i, it := range items {
		cands[i] = runItemCandidate(it)
	}
	if done {
		return cands, "", nil
	}
	next, err := pagedCursor{Phase: 1, Key: last, Dev: cur.Dev}.encode(capRunsKind)
	return cands, next, err
}

// metaDelete deletes the run item on condition that it is still as the candidate says.
func (s *RetentionStore) metaDelete(c retention.Candidate) (*types.Delete, error) {
	cond, err := buildCondition(itemExists().And(expression.Name("status").Equal(expression.Value(string(c.Status)))))
	if err != nil {
		return nil, err
	}
	return &types.Delete{
		TableName: aws.String(s.runs), Key: runKey(c.ID),
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	}, nil
}

// deleteGroupChunks is the most chunks one transaction of DeleteRun deletes: the rest of the
// transaction is the counter update, and in the last one the run's entry (its tail ledger item)
// and the run item.
const deleteGroupChunks = maxTransactItems - 3

// DeleteRun implements retention.Store. The run's chunks and the counter decrement go in as few
// transactions as DynamoDB allows (the run item in the last one), each chunk deletion conditional
// on the chunk existing; when a condition fails (another purge or TTL got there first) it falls
// back to one transaction per chunk, so every byte is subtracted exactly once. The run item goes
// last, so a purge that dies half way finds the run again.
func (s *RetentionStore) DeleteRun(ctx context.Context, c retention.Candidate) (retention.Deleted, error) {
	var del retention.Deleted
	if c.InlineBytes >= run.MinSharedBytes && c.Bytes == c.InlineBytes {
		// The output may be stored once: then the run's reference goes with the run item.
		it, found, err := getItem[struct {
			Blob    hexBytes `dynamodbav:"blob"`
			Attempt int      `dynamodbav:"attempt"`
		}](ctx, s.db, s.runs, runKey(c.ID), "run "+c.ID)
		if err != nil || !found {
			return del, err
		}
		if it.Blob != "" {
			return s.deleteSharedRun(ctx, c, string(it.Blob), it.Attempt)
		}
	}
	// Read the chunks unless the whole output is the inline tail (a finished run whose writer
	// stored nothing else; a run that took over a dead attempt deleted that attempt's chunks
	// first). Otherwise the run's own chunk count is only what its writer said (an abandoned run
	// may hold chunks it does not list), and a chunk left behind would keep its bytes counted.
	var chunks []chunkRef
	if c.InlineBytes == 0 || c.Bytes != c.InlineBytes {
		var err error
		if chunks, err = chunkSizes(ctx, s.db, s.runs, c.ID); err != nil {
			return del, err
		}
	}
	for len(chunks) > 0 || !del.Run {
		n := min(len(chunks), deleteGroupChunks)
		group := chunks[:n]
		chunks = chunks[n:]
		last := len(chunks) == 0
		var items []types.TransactWriteItem
		var size int64
		for _, ch := range group {
			size += ch.Size
			d, err := chunkDelete(s.runs, c.ID, ch.SK)
			if err != nil {
				return del, err
			}
			items = append(items, d)
		}
		if size != 0 {
			sub, err := counterAdd(s.runs, c.DeviceID, -size)
			if err != nil {
				return del, err
			}
			items = append(items, sub)
		}
		if last {
			if c.InlineBytes > 0 { // the run item's inline tail goes with it, and so does its ledger item
				items = append(items, s.tailDelete(c))
				if size == 0 { // no counter update marks the device changed: its totals moved
					mark, err := counterMark(s.runs, c.DeviceID)
					if err != nil {
						return del, err
					}
					items = append(items, mark)
				}
				size += c.InlineBytes
			} else if len(group) > 0 { // its entry, which counts no bytes, goes with it
				items = append(items, s.tailDelete(c))
			}
			meta, err := s.metaDelete(c)
			if err != nil {
				return del, err
			}
			items = append(items, types.TransactWriteItem{Delete: meta})
		}
		if len(items) == 1 && last {
			return s.deleteMeta(ctx, c, del)
		}
		err := transact(ctx, s.db, items...)
		if err == nil {
			del.Chunks += int64(len(group))
			if last && c.InlineBytes > 0 {
				del.Chunks++ // the inline tail is the run's last chunk
			}
			del.Bytes += size
			del.Run = last
			if last {
				return del, nil
			}
			continue
		}
		if !onlyConditionFailed(err) {
			return del, fmt.Errorf("delete run %s: %w", c.ID, err)
		}
		// Someone else deleted part of it: one chunk at a time, each exactly once.
		for _, ch := range group {
			ok, err := deleteChunk(ctx, s.db, s.runs, c.ID, c.DeviceID, ch.SK, ch.Size)
			if err != nil {
				return del, err
			}
			if ok {
				del.Chunks++
				del.Bytes += ch.Size
			}
		}
		if last {
			return s.deleteMeta(ctx, c, del)
		}
	}
	return del, nil
}

// deleteSharedRun deletes a run whose output is stored once under key by its attempt: the run
// item, its ledger item and its reference to the body in one transaction (with the body's head put in the check
// set), then the body if that was its last reference. A run deleted by someone else first is
// left to them.
func (s *RetentionStore) deleteSharedRun(ctx context.Context, c retention.Candidate, key string, attempt int) (retention.Deleted, error) {
	var del retention.Deleted
	meta, err := s.metaDelete(c)
	if err != nil {
		return del, err
	}
	unref, err := s.blobs.unrefItems(key, c.ID, attempt)
	if err != nil {
		return del, err
	}
	mark, err := counterMark(s.runs, c.DeviceID)
	if err != nil {
		return del, err
	}
	items := append([]types.TransactWriteItem{{Delete: meta}, s.tailDelete(c), mark}, unref...)
	err = transact(ctx, s.db, items...)
	checked := err == nil
	if onlyConditionFailed(err) && failedConditionIndex(err) != 0 {
		// The run is as read but the body has no head (a writer died creating it): drop the
		// reference alone.
		err = transact(ctx, s.db, items[:4]...)
	}
	if onlyConditionFailed(err) {
		return del, nil // another purge, or TTL, deleted the run
	}
	if err != nil {
		return del, fmt.Errorf("delete run %s: %w", c.ID, err)
	}
	del.Run, del.Chunks, del.Bytes = true, 1, c.InlineBytes
	if checked {
		if _, err := s.blobs.checkUnreferenced(ctx, key); err != nil {
			return del, err
		}
	}
	return del, nil
}

// SweepOutputs implements retention.Store: bodies stored once that a deleter left in the check
// set (it stopped between dropping a reference and checking the body) are deleted when no
// reference is left.
func (s *RetentionStore) SweepOutputs(ctx context.Context) (bodies, bytes int64, err error) {
	return s.blobs.sweep(ctx)
}

// StoredBytes implements retention.Store: the bytes of every body stored once.
func (s *RetentionStore) StoredBytes(ctx context.Context) (int64, error) {
	return s.blobs.storedBytes(ctx)
}

// tailDelete deletes the ledger item that counts a run's inline tail (there may be none: a
// finish cut in half by a crash and not yet reconciled).
func (s *RetentionStore) tailDelete(c retention.Candidate) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.runs), Key: tailKey(c.DeviceID, c.ID)}}
}

// deleteMeta deletes the run item and its entry (with its inline tail's bytes when it has one).
func (s *RetentionStore) deleteMeta(ctx context.Context, c retention.Candidate, del retention.Deleted) (retention.Deleted, error) {
	d, err := s.metaDelete(c)
	if err != nil {
		return del, err
	}
	// The run item and its entry together: an entry left behind would still name the run as a
	// previous run.
	items := []types.TransactWriteItem{{Delete: d}, s.tailDelete(c)}
	if c.InlineBytes > 0 {
		mark, merr := counterMark(s.runs, c.DeviceID)
		if merr != nil {
			return del, merr
		}
		items = append(items, mark)
	}
	err = transact(ctx, s.db, items...)
	if onlyConditionFailed(err) {
		return del, nil
	}
	if err != nil {
		return del, fmt.Errorf("delete run %s: %w", c.ID, err)
	}
	del.Run = true
	if c.InlineBytes > 0 {
		del.Chunks++ // the inline tail is the run's last chunk
		del.Bytes += c.InlineBytes
	}
	return del, nil
}

// shardCursor is a position in a set of sharded partitions: a shard and a cursor within it.
type shardCursor struct {
	Shard int    `json:"s"`
	Key   string `json:"k,omitempty"`
}

// decodeShardCursor reads a cursor over shards 0..shards-1 ("" is the start).
func decodeShardCursor(cursor string, shards int) (shardCursor, error) {
	var cur shardCursor
	if cursor != "" {
		if err := json.Unmarshal([]byte(cursor), &cur); err != nil || cur.Shard < 0 || cur.Shard >= shards {
			return shardCursor{}, fault.ErrBadCursor
		}
	}
	return cur, nil
}

func (c shardCursor) encode() (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return string(b), nil
}

// ChangedDevices implements retention.Store: the devices whose bytes moved since the byte purge
// last folded them (runs_table.go, "The changed set"): first those marked in the changed set's
// shards of GSI by_day, then those with a run created since the last full fold less changedLag,
// from the runs' day shards of GSI by_day, where a batch's run list names its runs' devices. A
// device may be listed more than once.
func (s *RetentionStore) ChangedDevices(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	cur, err := s.changedCursor(ctx, cursor)
	if err != nil {
		return nil, "", err
	}
	for !cur.done() {
		start, ok := decodeCursor(cur.Key, resources.AttrPK, resources.AttrSK, resources.AttrGSI2PK, resources.AttrGSI2SK)
		if !ok {
			return nil, "", fault.ErrBadCursor
		}
		pk, since := cur.partition()
		kc := expression.Key(resources.AttrGSI2PK).Equal(expression.Value(pk))
		if since != "" {
			kc = kc.And(expression.Key(resources.AttrGSI2SK).GreaterThanEqual(expression.Value(since)))
		}
		expr, err := expression.NewBuilder().WithKeyCondition(kc).
			WithProjection(expression.NamesList(expression.Name("device_id"), expression.Name(resources.AttrPK))).Build()
		if err != nil {
			return nil, "", fmt.Errorf("build query: %w", err)
		}
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.runs), IndexName: aws.String(resources.IndexRunsByDay),
			KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ExclusiveStartKey: start, Limit: aws.Int32(int32(limit)),
		})
		if err != nil {
			return nil, "", fmt.Errorf("query changed devices: %w", err)
		}
		var items []struct {
			PK       string `dynamodbav:"pk"`
			DeviceID string `dynamodbav:"device_id"`
		}
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
			return nil, "", fmt.Errorf("unmarshal changed devices: %w", err)
		}
		// A run list in a day's partition stands for its runs' devices.
		var lists []string
		for _, it := range items {
			if isRunList(it.PK) {
				lists = append(lists, it.PK)
			}
		}
		listed, err := readRunLists(ctx, s.db, s.runs, lists)
		if err != nil {
			return nil, "", err
		}
		if len(out.LastEvaluatedKey) > 0 {
			if cur.Key, err = encodeCursor(out.LastEvaluatedKey); err != nil {
				return nil, "", err
			}
		} else {
			cur.Part, cur.Key = cur.Part+1, ""
		}
		next := ""
		if !cur.done() {
			if next, err = cur.encode(); err != nil {
				return nil, "", err
			}
		}
		if len(items) > 0 || next == "" {
			// A device is in a partition once per marked item or run: list it once a page.
			devs := make([]string, 0, len(items))
			seen := map[string]bool{}
			add := func(d string) {
				if d != "" && !seen[d] {
					seen[d] = true
					devs = append(devs, d)
				}
			}
			for _, it := range items {
				add(it.DeviceID)
				for _, r := range listed[it.PK] {
					add(r.DeviceID)
				}
			}
			return devs, next, nil
		}
	}
	return nil, "", nil
}

// changedCursor is a position in the walk of the changed set: Part counts the changed set's
// shards, then dayShards partitions for each day from Since's to Until. Since and Until are fixed
// when the walk starts (Since empty: no run needs looking at by day).
type changedCursor struct {
	Part  int    `json:"p"`
	Key   string `json:"k,omitempty"`
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
	// first and days are Since's day and how many days the walk reads, from Since and Until.
	first time.Time
	days  int
}

// changedCursor decodes cursor, or starts a walk: runs are looked at from the later of the last
// full fold and UNMARKED_SINCE, less changedLag, to today.
func (s *RetentionStore) changedCursor(ctx context.Context, cursor string) (changedCursor, error) {
	var cur changedCursor
	if cursor != "" {
		if err := json.Unmarshal([]byte(cursor), &cur); err != nil || cur.Part < 0 {
			return changedCursor{}, fault.ErrBadCursor
		}
	} else {
		items, err := batchGet(ctx, s.db, s.runs, []map[string]types.AttributeValue{retentionKey(unmarkedSK), retentionKey(totalsAsOfSK)}, nil)
		if err != nil {
			return changedCursor{}, fmt.Errorf("read changed set bounds: %w", err)
		}
		var unmarked, asOf string
		for _, item := range items {
			var it struct {
				SK   string `dynamodbav:"sk"`
				At   string `dynamodbav:"at"`
				AsOf string `dynamodbav:"as_of"`
			}
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return changedCursor{}, fmt.Errorf("unmarshal changed set bounds: %w", err)
			}
			unmarked, asOf = cmp.Or(it.At, unmarked), cmp.Or(it.AsOf, asOf)
		}
		if unmarked != "" {
			since, err := time.Parse(timeLayout, max(unmarked, asOf))
			if err != nil {
				return changedCursor{}, fmt.Errorf("parse changed set bound %q: %w", max(unmarked, asOf), err)
			}
			cur.Since = since.Add(-changedLag).UTC().Format(timeLayout)
			cur.Until = s.now().UTC().Format(time.DateOnly)
		}
	}
	if cur.Since != "" {
		since, err1 := time.Parse(timeLayout, cur.Since)
		until, err2 := time.Parse(time.DateOnly, cur.Until)
		if err1 != nil || err2 != nil {
			return changedCursor{}, fault.ErrBadCursor
		}
		cur.first = since.Truncate(24 * time.Hour)
		cur.days = int(until.Sub(cur.first)/(24*time.Hour)) + 1
	}
	if cur.Part > changedShards+cur.days*dayShards {
		return changedCursor{}, fault.ErrBadCursor
	}
	return cur, nil
}

func (c changedCursor) done() bool { return c.Part >= changedShards+c.days*dayShards }

// partition is the GSI by_day partition at the cursor's part and, for a day's runs, the sort key
// they are read from.
func (c changedCursor) partition() (pk, since string) {
	if c.Part < changedShards {
		return changedShard(c.Part), ""
	}
	k := c.Part - changedShards
	day := c.first.AddDate(0, 0, k/dayShards).Format(time.DateOnly)
	return dayPartition(day, k%dayShards), c.Since
}

func (c changedCursor) encode() (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return string(b), nil
}

// DeviceBytes implements retention.Store: the device's counter and tail items.
func (s *RetentionStore) DeviceBytes(ctx context.Context, deviceID string) (int64, error) {
	l, err := readByteLedger(ctx, s.db, s.runs, deviceID)
	return l.Total, err
}

// ClearChanged implements retention.Store: when the device's bytes still equal seen and are
// what FoldTotals last folded, its counter (on condition that it did not change since: ver) and
// the tail items that made up seen leave the changed set. A tail item written since is another
// item and stays in it; a ledger item deleted since changed the counter's ver.
func (s *RetentionStore) ClearChanged(ctx context.Context, deviceID string, seen int64) error {
	l, err := readByteLedger(ctx, s.db, s.runs, deviceID)
	if err != nil || l.Total != seen || l.Folded != (run.Usage{ChargedBytes: l.Total, StoredBytes: l.Kept}) {
		return err
	}
	ver := expression.Name(counterVerAttr).Equal(expression.Value(l.Ver))
	if l.Ver == 0 {
		ver = expression.Name(counterVerAttr).AttributeNotExists()
	}
	// unmark removes the changed-set pair from one byte item, on condition cond.
	unmark := func(sk string, cond expression.ConditionBuilder) error {
		upd := expression.Remove(expression.Name(resources.AttrGSI2PK)).Remove(expression.Name(resources.AttrGSI2SK))
		expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
		if err != nil {
			return fmt.Errorf("build update: %w", err)
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.runs), Key: bytesKey(deviceID, sk),
			UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("clear changed mark of %s: %w", deviceID, err)
		}
		return nil
	}
	if l.CounterMarked {
		bytes := expression.Name("bytes").Equal(expression.Value(l.Counter))
		if l.Counter == 0 {
			bytes = bytes.Or(expression.Name("bytes").AttributeNotExists())
		}
		if err := unmark(counterSK, bytes.And(ver)); err != nil {
			return err
		}
	}
	for _, sk := range l.MarkedTails {
		if err := unmark(sk, expression.AttributeExists(expression.Name(resources.AttrGSI2PK))); err != nil {
			return err
		}
	}
	return nil
}

// SaveReport implements retention.Store.
func (s *RetentionStore) SaveReport(ctx context.Context, r retention.Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode retention report: %w", err)
	}
	item, err := attributevalue.MarshalMap(reportItem{PK: retentionPK, SK: reportSK, Report: string(b)})
	if err != nil {
		return fmt.Errorf("marshal retention report: %w", err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.runs), Item: item}); err != nil {
		return fmt.Errorf("put retention report: %w", err)
	}
	return nil
}

// LastReport implements retention.Store; retention.ErrNoReport before the first.
func (s *RetentionStore) LastReport(ctx context.Context) (retention.Report, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.runs), Key: retentionKey(reportSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return retention.Report{}, fmt.Errorf("get retention report: %w", err)
	}
	var it reportItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return retention.Report{}, fmt.Errorf("unmarshal retention report: %w", err)
	}
	if it.Report == "" {
		return retention.Report{}, retention.ErrNoReport
	}
	var r retention.Report
	if err := json.Unmarshal([]byte(it.Report), &r); err != nil {
		return retention.Report{}, fmt.Errorf("decode retention report: %w", err)
	}
	return r, nil
}

// JobRunning implements retention.Jobs: a job that does not exist (expired) does not run.
func (s *RetentionStore) JobRunning(ctx context.Context, jobID string) (bool, error) {
	proj, err := expression.NewBuilder().WithProjection(expression.NamesList(expression.Name("status"))).Build()
	if err != nil {
		return false, fmt.Errorf("build projection: %w", err)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.jobs), Key: jobKey(jobID), ConsistentRead: aws.Bool(true),
		ProjectionExpression: proj.Projection(), ExpressionAttributeNames: proj.Names(),
	})
	if err != nil {
		return false, fmt.Errorf("get job %s: %w", jobID, err)
	}
	var it struct {
		Status string `dynamodbav:"status"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return false, fmt.Errorf("unmarshal job %s: %w", jobID, err)
	}
	if it.Status == "" {
		return false, nil
	}
	return !bulk.JobStatus(it.Status).Terminal(), nil
}

// ForgetTTLChunk subtracts output that DynamoDB TTL deleted from its device's bytes, exactly once
// per item: for a chunk, a marker item written in the same transaction as the counter decrement
// makes a redelivered stream record a no-op; for a run item's inline tail, its ledger item is
// deleted. It reports whether this call subtracted.
func (s *RetentionStore) ForgetTTLChunk(ctx context.Context, pk, sk, deviceID string, size int64) (bool, error) {
	runID, isRun := strings.CutPrefix(pk, runPrefix)
	if !isRun || !(strings.HasPrefix(sk, chunkPrefix) || sk == runMetaSK) || deviceID == "" {
		return false, fmt.Errorf("forget TTL chunk %s/%s: not a run chunk or run item with a device", pk, sk)
	}
	if sk == runMetaSK {
		// A run item's inline tail is counted by its ledger item: deleting that is exactly once
		// by itself.
		out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.runs), Key: tailKey(deviceID, runID),
			ReturnValues: types.ReturnValueAllOld,
		})
		if err != nil {
			return false, fmt.Errorf("forget TTL tail of %s: %w", pk, err)
		}
		// The device's totals moved: mark it changed, also when a redelivered record finds the
		// ledger item gone (the mark is idempotent).
		mark, err := counterMark(s.runs, deviceID)
		if err != nil {
			return false, err
		}
		if _, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: mark.Update.TableName, Key: mark.Update.Key, UpdateExpression: mark.Update.UpdateExpression,
			ExpressionAttributeNames: mark.Update.ExpressionAttributeNames, ExpressionAttributeValues: mark.Update.ExpressionAttributeValues,
		}); err != nil {
			return false, fmt.Errorf("mark %s changed: %w", deviceID, err)
		}
		return len(out.Attributes) > 0, nil
	}
	marker, err := attributevalue.MarshalMap(ttlMarker{
		PK: ttlMarkerPrefix + pk, SK: ttlMarkerPrefix + sk, ExpiresAt: s.now().Add(ttlMarkerKeep).Unix(),
	})
	if err != nil {
		return false, fmt.Errorf("marshal TTL marker of %s/%s: %w", pk, sk, err)
	}
	absent, err := buildCondition(itemAbsent())
	if err != nil {
		return false, err
	}
	sub, err := counterAdd(s.runs, deviceID, -size)
	if err != nil {
		return false, err
	}
	err = transact(ctx, s.db, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.runs), Item: marker,
		ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names(),
	}}, sub)
	if err != nil {
		if onlyConditionFailed(err) {
			return false, nil
		}
		return false, fmt.Errorf("forget TTL chunk %s/%s: %w", pk, sk, err)
	}
	return true, nil
}

// ForgetTTLReference drops the reference a run item that DynamoDB TTL removed held to its output
// stored once (the key and the attempt are the old image's blob and attempt), deleting the body
// if that was the last: both steps are idempotent, so a redelivered stream record changes
// nothing more.
func (s *RetentionStore) ForgetTTLReference(ctx context.Context, blob, runID string, attempt int) error {
	if blob == "" || runID == "" {
		return errors.New("forget TTL reference: output key and run id are required")
	}
	return s.blobs.unref(ctx, blob, runID, attempt)
}

// ForgetTTLBlob handles an item of an output stored once that DynamoDB TTL removed: a head
// (every reference had expired before it) takes its body's data and stored bytes with it,
// exactly once; a reference (its run is gone, or a writer died before writing it) has the body
// checked for other references. It reports whether it freed a body.
func (s *RetentionStore) ForgetTTLBlob(ctx context.Context, pk, sk, gen string, size int64) (bool, error) {
	key, ok := blobKeyFromPK(pk)
	if !ok || key == "" {
		return false, fmt.Errorf("forget TTL output %s/%s: not an output stored once", pk, sk)
	}
	switch {
	case sk == blobHeadSK:
		return s.blobs.forgetTTLHead(ctx, key, gen, size)
	case strings.HasPrefix(sk, blobRefPrefix):
		freed, err := s.blobs.checkUnreferenced(ctx, key)
		return freed > 0, err
	}
	return false, nil
}
