package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// A batch's run list (RUNLIST#<job>#<batch>, sk LIST) names the devices whose runs the batch's
// first invocation writes, and is written before any of them (by a batch of three devices or
// more: bulk.RunStore.ListRuns). It stands in GSI by_day for all of them: one entry in a day
// shard, sorted by the batch's start, where each run would otherwise write an entry of its own
// (a write unit a run). The purges read the list's entry, then the list and the runs it names by
// key (readRunLists). The runs it names carry no by_day entry (run.Listed). A run is created
// after its list, within its invocation: the age purge skips a listed run not yet due and leaves
// its day for the next purge; the byte purge's window starts changedLag before the last full
// fold, far earlier than any run of a list it must see. The list expires a day after its runs,
// and its deletion touches no byte count (the stream filter passes only output items).
const (
	runListPrefix = "RUNLIST#"
	runListSK     = "LIST"
	// runListKeep is how much longer than its batch's runs a list is kept.
	runListKeep = 24 * time.Hour
)

// runListItem is a batch's run list.
type runListItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI2PK string `dynamodbav:"gsi2pk"`
	GSI2SK string `dynamodbav:"gsi2sk"`
	// Job and Devices are in no index: GSI by_day carries only the list's keys.
	Job       string   `dynamodbav:"job"`
	Devices   []string `dynamodbav:"devs"`
	ExpiresAt int64    `dynamodbav:"expires_at,omitempty"`
}

// isRunList reports whether an item of GSI by_day, by its table key, is a batch's run list.
func isRunList(pk string) bool { return strings.HasPrefix(pk, runListPrefix) }

// ListRuns implements bulk.RunStore: one put of the batch's run list, in the day shard of at.
// Writing it again (a redelivered first claim) writes the same list.
func (s *RunStore) ListRuns(ctx context.Context, job string, batch int, devices []string, at, expires time.Time) error {
	if len(devices) == 0 {
		return nil
	}
	pk := batchPK(runListPrefix, job, batch)
	it := runListItem{
		PK: pk, SK: runListSK,
		GSI2PK: dayPartition(at.UTC().Format(time.DateOnly), shardOf(pk, dayShards)), GSI2SK: at.UTC().Format(timeLayout),
		Job: job, Devices: devices,
	}
	if !expires.IsZero() {
		it.ExpiresAt = expires.Add(runListKeep).Unix()
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal run list of job %s batch %d: %w", job, batch, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("list runs of job %s batch %d: %w", job, batch, err)
	}
	return nil
}

// readRunLists reads the run lists with the given partition keys (eventually consistent: a list
// is written once, before its runs) and returns, by partition key, the ids of the runs each names
// and their devices. A list that expired is absent.
func readRunLists(ctx context.Context, db API, table string, pks []string) (map[string][]listedRun, error) {
	keys := make([]map[string]types.AttributeValue, len(pks))
	for i, pk := range pks {
		keys[i] = itemKey(pk, runListSK)
	}
	proj, err := expression.NewBuilder().WithProjection(expression.NamesList(expression.Name(resources.AttrPK),
		expression.Name("job"), expression.Name("devs"))).Build()
	if err != nil {
		return nil, fmt.Errorf("build projection: %w", err)
	}
	lists := map[string][]listedRun{}
	for start := 0; start < len(keys); start += maxBatchGetKeys {
		items, err := batchGetWith(ctx, db, table, keys[start:min(start+maxBatchGetKeys, len(keys))], &proj, false)
		if err != nil {
			return nil, fmt.Errorf("read run lists: %w", err)
		}
		for _, item := range items {
			var it runListItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, fmt.Errorf("unmarshal run list: %w", err)
			}
			runs := make([]listedRun, len(it.Devices))
			for i, d := range it.Devices {
				runs[i] = listedRun{ID: bulk.RunID(it.Job, d), DeviceID: d}
			}
			lists[it.PK] = runs
		}
	}
	return lists, nil
}

// listedRun is one run a run list names.
type listedRun struct{ ID, DeviceID string }
