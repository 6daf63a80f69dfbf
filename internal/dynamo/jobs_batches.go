package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// Where a job's batch items live, by its META's bk:
//
//   - 3 (jobs created since 2026-12-07, slim batches): each batch under a partition key of its
//     own, JOB#<id>#B<00000>, as two items. BATCH#<00000> is what progress rewrites: state,
//     lease, times, v (its version: every progress record adds one) and per device i of the
//     batch (by its position in IDS) s<i>, its status's one-byte code (jobs_pack.go; absent
//     while queued), and d<i>, the rest of its state packed (absent when there is none). IDS
//     holds the batch's device_ids, written once. A progress record writes the BATCH# item
//     alone, about 35 bytes a finished device, not a transaction: the batch's counts go to its
//     count shard afterwards as a whole, versioned entry (k<batch>, see syncCounts), so
//     a duplicate or late write never counts twice and a lost one is made good by the next.
//   - 2: each batch under its own partition key, one item JOB#<id>#B<00000> / BATCH#<00000>
//     with device_ids and devs (a map by device id), recorded in a transaction with its count
//     shard.
//   - absent: as 2, but under the job's partition key, JOB#<id> / BATCH#<00000>, read with a
//     Query.
//
// Batches under their own keys are read by key, BatchGetItem, since the job knows how many it
// has. A job's layout never changes, so the store remembers it per job.
const (
	batchKeysAttr = "bk"
	// layoutShared, layoutOwnKeys and layoutSlim are the layouts (bk; layoutShared is bk absent).
	layoutShared  = 0
	layoutOwnKeys = 2
	layoutSlim    = 3
	// layoutsKept bounds the jobs whose layout one store remembers, idsKept the batches whose
	// device ids it remembers (about 1 KB each).
	layoutsKept = 4096
	idsKept     = 1024
	// idsSK is the sort key of a slim batch's device ids.
	idsSK = "IDS"
	// attrVersion is a slim batch item's version.
	attrVersion = "v"
	// doneSK is the sort key, in the job's partition, of a slim job's set of done batches
	// (attrDone, a number set): it starts with the META's, so that one Query reads both.
	doneSK   = jobMetaSK + "#DONE"
	attrDone = "done"
)

// batchLayouts remembers the batch layout of jobs.
type batchLayouts = lru.Cache[string, int]

func newBatchLayouts() *batchLayouts {
	c, err := lru.New[string, int](layoutsKept)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// batchIDCache remembers the device ids of slim batches (job#batch), which never change.
type batchIDCache = lru.Cache[string, []string]

func newBatchIDCache() *batchIDCache {
	c, err := lru.New[string, []string](idsKept)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

func idsCacheKey(jobID string, batch int) string { return fmt.Sprintf("%s#%d", jobID, batch) }

// ownBatchKey is the key of a batch under a partition key of its own (its BATCH# item).
func ownBatchKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(ownBatchPK(jobID, batch), batchSK(batch))
}

func ownBatchPK(jobID string, batch int) string {
	return fmt.Sprintf("%s%s#B%05d", jobPrefix, jobID, batch)
}

// idsKey is the key of a slim batch's device ids.
func idsKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(ownBatchPK(jobID, batch), idsSK)
}

// sharedBatchKey is the key of a batch in the job's partition (jobs created before 2026-12-07).
func sharedBatchKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(jobPrefix+jobID, batchSK(batch))
}

// remember notes the batch layout of the job whose META is item.
func (s *JobStore) remember(jobID string, item map[string]types.AttributeValue) {
	layout := layoutShared
	if v, ok := item[batchKeysAttr].(*types.AttributeValueMemberN); ok {
		layout, _ = strconv.Atoi(v.Value)
	}
	s.layouts.Add(jobID, layout)
}

// batchLayout returns the job's batch layout, reading its META when the store does not
// remember; bulk.ErrJobNotFound without one.
func (s *JobStore) batchLayout(ctx context.Context, jobID string) (int, error) {
	if layout, ok := s.layouts.Get(jobID); ok {
		return layout, nil
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#bk"), ExpressionAttributeNames: map[string]string{"#bk": batchKeysAttr},
	})
	if err != nil {
		return 0, fmt.Errorf("get job %s: %w", jobID, err)
	}
	if out.Item == nil {
		return 0, bulk.ErrJobNotFound
	}
	s.remember(jobID, out.Item)
	layout, _ := s.layouts.Get(jobID)
	return layout, nil
}

// batchKey is the key of the job's batch item (a slim batch's BATCH# item), in the job's layout.
func (s *JobStore) batchKey(ctx context.Context, jobID string, batch int) (map[string]types.AttributeValue, error) {
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if layout == layoutShared {
		return sharedBatchKey(jobID, batch), nil
	}
	return ownBatchKey(jobID, batch), nil
}

// batchIDs returns a slim batch's device ids, remembered or read; bulk.ErrJobNotFound when the
// batch has none.
func (s *JobStore) batchIDs(ctx context.Context, jobID string, batch int) ([]string, error) {
	if ids, ok := s.ids.Get(idsCacheKey(jobID, batch)); ok {
		return ids, nil
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: idsKey(jobID, batch), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get device ids of batch %d of job %s: %w", batch, jobID, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("batch %d of job %s: %w", batch, jobID, bulk.ErrJobNotFound)
	}
	var it idsItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, fmt.Errorf("unmarshal device ids of batch %d of job %s: %w", batch, jobID, err)
	}
	s.ids.Add(idsCacheKey(jobID, batch), it.DeviceIDs)
	return it.DeviceIDs, nil
}

// idsItem is a slim batch's IDS item.
type idsItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	Batch     int      `dynamodbav:"batch"`
	DeviceIDs []string `dynamodbav:"device_ids"`
	ExpiresAt int64    `dynamodbav:"expires_at,omitempty"`
}

// slimBatch decodes a slim batch's BATCH# item, given its device ids, into the batch item the
// readers of every layout share.
func slimBatch(item map[string]types.AttributeValue, ids []string) (batchItem, error) {
	var it batchItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return batchItem{}, fmt.Errorf("unmarshal batch: %w", err)
	}
	it.DeviceIDs = ids
	devs, err := slimStates(item, ids, it.Batch)
	if err != nil {
		return batchItem{}, fmt.Errorf("batch %d: %w", it.Batch, err)
	}
	it.Devs = devs
	return it, nil
}

// slimStates decodes the device states of a slim batch's BATCH# item (queued when it has none).
func slimStates(item map[string]types.AttributeValue, ids []string, batch int) (map[string]devState, error) {
	devs := make(map[string]devState, len(ids))
	for i, id := range ids {
		status := run.Queued
		if v, ok := item[slimStatusAttr(i)].(*types.AttributeValueMemberS); ok {
			st, known := codeStatuses[firstByte(v.Value)]
			if !known || len(v.Value) != 1 {
				return nil, fmt.Errorf("device %s: unknown status code %q", id, v.Value)
			}
			status = st
		}
		var packed []byte
		if v, ok := item[slimStateAttr(i)].(*types.AttributeValueMemberB); ok {
			packed = v.Value
		}
		d, err := unpackState(packed, string(status), batch)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", id, err)
		}
		devs[id] = d
	}
	return devs, nil
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

// slimStatusAttr and slimStateAttr name the status and the packed state of the device at
// position i of a slim batch.
func slimStatusAttr(i int) string { return "s" + strconv.Itoa(i) }
func slimStateAttr(i int) string  { return "d" + strconv.Itoa(i) }

// slimCounts counts the devices of a slim batch's BATCH# item by status.
func slimCounts(item map[string]types.AttributeValue) map[run.Status]int {
	counts := map[run.Status]int{}
	for name, v := range item {
		if len(name) < 2 || name[0] != 's' || name[1] < '0' || name[1] > '9' {
			continue
		}
		if sv, ok := v.(*types.AttributeValueMemberS); ok && len(sv.Value) == 1 {
			if st, ok := codeStatuses[sv.Value[0]]; ok && st != run.Queued {
				counts[st]++
			}
		}
	}
	return counts
}

// batchProjection is what the readers of a whole job's batches read of each: number, state,
// devices and delivery times.
func batchProjection() expression.ProjectionBuilder {
	return expression.NamesList(expression.Name("batch"), expression.Name("state"),
		expression.Name("device_ids"), expression.Name(attrUpdatedAt), expression.Name(attrResentAt))
}

// readBatches reads up to n of the job's batch items from batch start on, in order, whole or
// projected (batchProjection), and whether any follow.
func (s *JobStore) readBatches(ctx context.Context, j bulk.Job, start, n int, projected bool) ([]batchItem, bool, error) {
	layout, err := s.batchLayout(ctx, j.ID)
	if err != nil {
		return nil, false, err
	}
	if layout == layoutShared {
		return s.queryBatchItems(ctx, j.ID, start, n, projected)
	}
	var proj *expression.Expression
	if projected {
		p := batchProjection()
		if layout == layoutSlim {
			p = p.AddNames(expression.Name(resources.AttrPK), expression.Name(resources.AttrSK))
		}
		expr, err := expression.NewBuilder().WithProjection(p).Build()
		if err != nil {
			return nil, false, fmt.Errorf("build projection: %w", err)
		}
		proj = &expr
	}
	keysPer := 1
	if layout == layoutSlim {
		keysPer = 2 // its BATCH# and IDS items
	}
	end := min(start+n, j.Batches)
	var out []batchItem
	for from := start; from < end; from += maxBatchGetKeys / keysPer {
		var keys []map[string]types.AttributeValue
		for b := from; b < min(from+maxBatchGetKeys/keysPer, end); b++ {
			keys = append(keys, ownBatchKey(j.ID, b))
			if layout == layoutSlim {
				keys = append(keys, idsKey(j.ID, b))
			}
		}
		items, err := batchGet(ctx, s.db, s.table, keys, proj)
		if err != nil {
			return nil, false, fmt.Errorf("read batches of job %s: %w", j.ID, err)
		}
		var page []batchItem
		if layout == layoutSlim {
			page, err = s.pairSlim(items, j.ID)
		} else {
			page, err = unmarshalBatches(items, j.ID)
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, page...)
	}
	slices.SortFunc(out, func(a, b batchItem) int { return cmp.Compare(a.Batch, b.Batch) })
	return out, end < j.Batches, nil
}

// pairSlim decodes slim batches from their BATCH# and IDS items, read together; a batch of
// which either is missing is left out (the job expired).
func (s *JobStore) pairSlim(items []map[string]types.AttributeValue, jobID string) ([]batchItem, error) {
	progress := map[string]map[string]types.AttributeValue{}
	ids := map[string][]string{}
	for _, item := range items {
		pk, _ := item[resources.AttrPK].(*types.AttributeValueMemberS)
		sk, _ := item[resources.AttrSK].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil {
			return nil, fmt.Errorf("batch of job %s read without its key", jobID)
		}
		if sk.Value != idsSK {
			progress[pk.Value] = item
			continue
		}
		var it idsItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, fmt.Errorf("unmarshal device ids of job %s: %w", jobID, err)
		}
		ids[pk.Value] = it.DeviceIDs
		s.ids.Add(idsCacheKey(jobID, it.Batch), it.DeviceIDs)
	}
	var out []batchItem
	for pk, item := range progress {
		devices, ok := ids[pk]
		if !ok {
			continue
		}
		it, err := slimBatch(item, devices)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", jobID, err)
		}
		out = append(out, it)
	}
	return out, nil
}

// slimBatchRead reads a slim batch's two items with one strongly consistent Query of its
// partition; ok is false when the batch does not exist.
func (s *JobStore) slimBatchRead(ctx context.Context, jobID string, batch int) (batchItem, bool, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: aws.String("#pk = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(ownBatchPK(jobID, batch))},
	})
	if err != nil {
		return batchItem{}, false, fmt.Errorf("read batch %d of job %s: %w", batch, jobID, err)
	}
	items, err := s.pairSlim(out.Items, jobID)
	if err != nil || len(items) == 0 {
		return batchItem{}, false, err
	}
	return items[0], true, nil
}

// queryBatchItems is readBatches for a job whose batches share its partition.
func (s *JobStore) queryBatchItems(ctx context.Context, jobID string, start, n int, projected bool) ([]batchItem, bool, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(jobPrefix + jobID)).
		And(expression.Key(resources.AttrSK).Between(expression.Value(batchSK(start)), expression.Value(batchPrefix+"~")))
	b := expression.NewBuilder().WithKeyCondition(kc)
	if projected {
		b = b.WithProjection(batchProjection())
	}
	expr, err := b.Build()
	if err != nil {
		return nil, false, fmt.Errorf("build query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	}
	if projected {
		in.ProjectionExpression = expr.Projection()
	}
	var out []batchItem
	for len(out) < n {
		in.Limit = aws.Int32(int32(min(n-len(out), maxBatchesPerRead)))
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("query batches of job %s: %w", jobID, err)
		}
		items, err := unmarshalBatches(page.Items, jobID)
		if err != nil {
			return nil, false, err
		}
		out = append(out, items...)
		if len(page.LastEvaluatedKey) == 0 {
			return out, false, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, true, nil
}

// allBatches reads every batch item of the job, projected (batchProjection), in order.
func (s *JobStore) allBatches(ctx context.Context, jobID string) ([]batchItem, error) {
	j, err := s.JobControl(ctx, jobID)
	if err != nil {
		return nil, err
	}
	items, _, err := s.readBatches(ctx, j, 0, max(j.Batches, 1)+1, true)
	return items, err
}

// eachBatch hands the job's batch items from batch start on, in order, to take until take
// refuses one (the page is full: that batch is the next page's cursor, returned) or none is left
// ("" returned). want says how many batch items the next read takes, given the items taken.
func (s *JobStore) eachBatch(ctx context.Context, j bulk.Job, start int, want func(taken int) int, take func(batchItem) bool) (string, error) {
	taken := 0
	for {
		items, more, err := s.readBatches(ctx, j, start, max(want(taken), 1), false)
		if err != nil {
			return "", err
		}
		for _, it := range items {
			if !take(it) {
				return bulk.DevicesCursor(it.Batch), nil
			}
			taken++
			start = it.Batch + 1
		}
		if !more || len(items) == 0 {
			return "", nil
		}
	}
}

func unmarshalBatches(items []map[string]types.AttributeValue, jobID string) ([]batchItem, error) {
	var out []batchItem
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("unmarshal batches of job %s: %w", jobID, err)
	}
	return out, nil
}

// slimBatchWrites are the puts of a new slim batch: its BATCH# item, every device queued, and
// its IDS item.
func slimBatchWrites(jobID string, batch int, ids []string, state string, expires, createdMS int64) ([]types.WriteRequest, error) {
	progress, err := attributevalue.MarshalMap(batchItem{PK: ownBatchPK(jobID, batch), SK: batchSK(batch), Batch: batch, State: state, ExpiresAt: expires, UpdatedAt: createdMS})
	if err != nil {
		return nil, fmt.Errorf("marshal batch %d: %w", batch, err)
	}
	delete(progress, "device_ids")
	delete(progress, "devs")
	progress[attrVersion] = nv(0)
	list, err := attributevalue.MarshalMap(idsItem{PK: ownBatchPK(jobID, batch), SK: idsSK, Batch: batch, DeviceIDs: ids, ExpiresAt: expires})
	if err != nil {
		return nil, fmt.Errorf("marshal device ids of batch %d: %w", batch, err)
	}
	return []types.WriteRequest{{PutRequest: &types.PutRequest{Item: progress}}, {PutRequest: &types.PutRequest{Item: list}}}, nil
}

// recordSlim is Record for a slim batch: one conditional update of its BATCH# item (each
// device's status must still be its change's From), then its counts to its count shard
// (syncCounts).
func (s *JobStore) recordSlim(ctx context.Context, jobID string, batch int, changes []bulk.Change, now time.Time) error {
	ids, err := s.batchIDs(ctx, jobID, batch)
	if err != nil {
		return err
	}
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	names := map[string]string{"#ua": attrUpdatedAt, "#v": attrVersion, "#pk": resources.AttrPK}
	values := map[string]types.AttributeValue{":ua": nv(now.UnixMilli()), ":one": nv(1)}
	sets := []string{"#ua = :ua"}
	var removes []string
	conds := []string{"attribute_exists(#pk)"}
	for n, c := range changes {
		i, ok := pos[c.DeviceID]
		if !ok {
			return bulk.ErrStateChanged // not a device of the batch
		}
		to, err := statusCode(c.To)
		if err != nil {
			return err
		}
		from, err := statusCode(c.From)
		if err != nil {
			return err
		}
		packed, err := packState(devState{Why: c.Reason, MS: c.DurationMS, Q: c.Seq, H: packDigest(c.OutputDigest), C: packCommands(c.Commands), Chg: c.Changed}, batch)
		if err != nil {
			return fmt.Errorf("pack device %s: %w", c.DeviceID, err)
		}
		st, d := fmt.Sprintf("#s%d", n), fmt.Sprintf("#d%d", n)
		names[st], names[d] = slimStatusAttr(i), slimStateAttr(i)
		values[fmt.Sprintf(":t%d", n)] = sv(string(to))
		sets = append(sets, fmt.Sprintf("%s = :t%d", st, n))
		if len(packed) > 0 {
			values[fmt.Sprintf(":d%d", n)] = &types.AttributeValueMemberB{Value: packed}
			sets = append(sets, fmt.Sprintf("%s = :d%d", d, n))
		} else {
			removes = append(removes, d)
		}
		values[fmt.Sprintf(":f%d", n)] = sv(string(from))
		if c.From == run.Queued {
			conds = append(conds, fmt.Sprintf("(attribute_not_exists(%s) OR %s = :f%d)", st, st, n))
		} else {
			conds = append(conds, fmt.Sprintf("%s = :f%d", st, n))
		}
	}
	update := "SET " + strings.Join(sets, ", ") + " ADD #v :one"
	if len(removes) > 0 {
		update += " REMOVE " + strings.Join(removes, ", ")
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: ownBatchKey(jobID, batch),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return s.stateChanged(ctx, jobID, batch)
	}
	if err != nil {
		return fmt.Errorf("record %d changes of job %s: %w", len(changes), jobID, err)
	}
	if !slices.ContainsFunc(changes, func(c bulk.Change) bool { return c.From != c.To }) {
		return nil // nothing to count (a running device recorded again)
	}
	return s.syncCounts(ctx, jobID, batch, out.Attributes)
}

// syncCounts writes the counts of a slim batch, as its BATCH# item (item) has them, to the
// batch's entry in its count shard, k<batch>: the item's version and its devices by status
// (packCounts). The write only replaces an older entry, so a late or duplicate one never
// undoes a newer, and any write of the batch makes good one that was lost (a crash between the
// two writes): the next record of the batch, the re-read after a failed condition, or the
// batch's finish.
func (s *JobStore) syncCounts(ctx context.Context, jobID string, batch int, item map[string]types.AttributeValue) error {
	v, ok := item[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return fmt.Errorf("batch %d of job %s has no version", batch, jobID)
	}
	version, err := strconv.ParseUint(v.Value, 10, 32)
	if err != nil {
		return fmt.Errorf("batch %d of job %s: version %q: %w", batch, jobID, v.Value, err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: countsKey(jobID, batch),
		UpdateExpression:          aws.String("SET #k = :k"),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND (attribute_not_exists(#k) OR #k < :k)"),
		ExpressionAttributeNames:  map[string]string{"#k": countEntryAttr(batch), "#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberB{Value: packCounts(uint32(version), slimCounts(item))}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("count batch %d of job %s: %w", batch, jobID, err)
	}
	return nil
}

// countEntryAttr names a slim batch's entry in its count shard.
func countEntryAttr(batch int) string { return "k" + strconv.Itoa(batch) }

// addCountEntries adds the slim batches' count entries of a count shard to counts.
func addCountEntries(counts map[run.Status]int, item map[string]types.AttributeValue) error {
	for name, v := range item {
		if len(name) < 2 || name[0] != 'k' || name[1] < '0' || name[1] > '9' {
			continue
		}
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			continue
		}
		if err := unpackCounts(b.Value, counts); err != nil {
			return fmt.Errorf("count entry %s: %w", name, err)
		}
	}
	return nil
}

// doneKey is the key of a slim job's set of done batches (doneSK).
func doneKey(jobID string) map[string]types.AttributeValue { return itemKey(jobPrefix+jobID, doneSK) }

// finishSlim is FinishBatch for a slim batch, in three writes that need no transaction, each of
// which may be repeated: the batch's counts to its count shard once more (syncCounts: the job's
// end reads them), the batch into the job's set of done batches (a set counts it once), and the
// batch item's state. A finish cut short after the set (a crash) is done again by the batch's
// next delivery.
func (s *JobStore) finishSlim(ctx context.Context, jobID string, batch int) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: ownBatchKey(jobID, batch), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("get batch %d of job %s: %w", batch, jobID, err)
	}
	if out.Item == nil {
		return nil // the job expired: JobControl says so
	}
	if err := s.syncCounts(ctx, jobID, batch, out.Item); err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: doneKey(jobID),
		UpdateExpression:          aws.String("ADD #done :b"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#done": attrDone, "#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": &types.AttributeValueMemberNS{Value: []string{strconv.Itoa(batch)}}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("count batch %d of job %s done: %w", batch, jobID, err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: ownBatchKey(jobID, batch),
		UpdateExpression:          aws.String("SET #state = :done, #ua = :now"),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND #state <> :done"),
		ExpressionAttributeNames:  map[string]string{"#state": "state", "#ua": attrUpdatedAt, "#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": sv(batchDone), ":now": nv(s.now().UnixMilli())},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("finish batch %d of job %s: %w", batch, jobID, err)
	}
	return nil
}

// addDone adds the batches in a slim job's set of done batches (its DONE item) to j.
func addDone(j *bulk.Job, item map[string]types.AttributeValue) {
	if set, ok := item[attrDone].(*types.AttributeValueMemberNS); ok {
		j.BatchesDone += len(set.Value)
	}
}
