package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
)

// savedJobPK is the one partition of the saved jobs table that lists them all: saved jobs are
// made at the pace of people, and one Query pages through them by id (time-ordered).
const savedJobPK = "SAVED"

// SavedJobStore keeps saved jobs in their table (savedjob.Store). Secret answers live in the
// secret store, never here.
type SavedJobStore struct {
	db    API
	table string
	recs  records[savedjob.SavedJob, savedJobItem]
}

// NewSavedJobStore returns a store over the named saved jobs table.
func NewSavedJobStore(db API, table string) (*SavedJobStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new saved job store: client and table name are required")
	}
	return &SavedJobStore{db: db, table: table, recs: records[savedjob.SavedJob, savedJobItem]{
		db: db, table: table, pk: savedJobPK, noun: "saved job", toItem: savedJobToItem, fromItem: savedJobItem.savedJob,
		id: func(r savedjob.SavedJob) string { return r.ID }, exists: savedjob.ErrExists, notFound: savedjob.ErrNotFound, conflict: savedjob.ErrConflict,
	}}, nil
}

type savedJobItem struct {
	PK         string             `dynamodbav:"pk"`
	SK         string             `dynamodbav:"sk"`
	ID         string             `dynamodbav:"id"`
	Name       string             `dynamodbav:"name"`
	Command    string             `dynamodbav:"command"`
	Commands   []bulk.Command     `dynamodbav:"commands,omitempty"`
	Options    bulk.Options       `dynamodbav:"options"`
	Selector   savedjob.Selector  `dynamodbav:"selector"`
	Owner      string             `dynamodbav:"owner"`
	Grants     bulk.Grants        `dynamodbav:"grants"`
	AnswersKey string             `dynamodbav:"answers_key,omitempty"`
	Schedule   *savedjob.Schedule `dynamodbav:"schedule,omitempty"`
	// NextDue and the by_due index's keys are set only while the schedule is enabled: the
	// index is sparse, so the scheduler reads only what is due.
	NextDue   string    `dynamodbav:"next_due,omitempty"`
	DuePK     string    `dynamodbav:"gsi1pk,omitempty"`
	DueSK     string    `dynamodbav:"gsi1sk,omitempty"`
	Version   int64     `dynamodbav:"version"`
	CreatedAt time.Time `dynamodbav:"created_at"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

func savedJobToItem(j savedjob.SavedJob) savedJobItem {
	it := savedJobItem{
		PK: savedJobPK, SK: j.ID, ID: j.ID, Name: j.Name, Command: j.Command, Commands: bulk.Redacted(j.Commands), Options: j.Options,
		Selector: j.Selector, Owner: j.Owner, Grants: j.Grants, AnswersKey: j.AnswersKey, Schedule: j.Schedule,
		Version: j.Version, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
	if !j.NextDue.IsZero() {
		it.NextDue = dueKey(j.NextDue)
		it.DuePK, it.DueSK = duePK, it.NextDue+"#"+j.ID
	}
	return it
}

// duePK is the by_due index's one partition: schedules change at the pace of people, and a
// fire reads only the due ones.
const duePK = "DUE"

// dueKey writes a due time so that keys sort as times: UTC, whole seconds.
func dueKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (it savedJobItem) savedJob() savedjob.SavedJob {
	return savedjob.SavedJob{
		ID: it.ID, Name: it.Name, Command: it.Command, Commands: it.Commands, Options: it.Options, Selector: it.Selector,
		Owner: it.Owner, Grants: it.Grants, AnswersKey: it.AnswersKey, Schedule: it.Schedule, NextDue: parseDue(it.NextDue), Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
}

// Create implements savedjob.Store.
func (s *SavedJobStore) Create(ctx context.Context, j savedjob.SavedJob) error {
	return s.recs.create(ctx, j)
}

// Get implements savedjob.Store.
func (s *SavedJobStore) Get(ctx context.Context, id string) (savedjob.SavedJob, error) {
	return s.recs.get(ctx, id)
}

// Update implements savedjob.Store.
func (s *SavedJobStore) Update(ctx context.Context, j savedjob.SavedJob, prevVersion int64) error {
	return s.recs.update(ctx, j, prevVersion)
}

// Delete implements savedjob.Store.
func (s *SavedJobStore) Delete(ctx context.Context, id string, version int64) error {
	return s.recs.delete(ctx, id, version)
}

// List implements savedjob.Store: one page of the saved jobs' partition.
func (s *SavedJobStore) List(ctx context.Context, cursor string, limit int) ([]savedjob.SavedJob, string, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK)
	if !ok {
		return nil, "", fault.ErrBadCursor
	}
	in, err := s.recs.partitionQuery()
	if err != nil {
		return nil, "", err
	}
	in.ExclusiveStartKey, in.Limit = start, aws.Int32(int32(limit))
	res, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("query saved jobs: %w", err)
	}
	var items []savedJobItem
	if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
		return nil, "", fmt.Errorf("unmarshal saved jobs: %w", err)
	}
	out := make([]savedjob.SavedJob, len(items))
	for i, it := range items {
		out[i] = it.savedJob()
	}
	next, err := encodeCursor(res.LastEvaluatedKey)
	return out, next, err
}

func parseDue(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// claimTTL is how long a claim of a due time is kept: far longer than LateGrace, after which
// the due time can no longer be started anyway.
const claimTTL = 7 * 24 * time.Hour

// Due implements savedjob.DueStore: one Query of the sparse by_due index up to now.
func (s *SavedJobStore) Due(ctx context.Context, now time.Time) ([]savedjob.SavedJob, error) {
	key := expression.Key(resources.AttrGSI1PK).Equal(expression.Value(duePK)).
		And(expression.Key(resources.AttrGSI1SK).LessThanEqual(expression.Value(dueKey(now) + "#~")))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return nil, fmt.Errorf("build key condition: %w", err)
	}
	var out []savedjob.SavedJob
	var start map[string]types.AttributeValue
	for {
		res, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(resources.IndexSavedJobsByDue), KeyConditionExpression: expr.KeyCondition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("query due saved jobs: %w", err)
		}
		var items []savedJobItem
		if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
			return nil, fmt.Errorf("unmarshal due saved jobs: %w", err)
		}
		for _, it := range items {
			out = append(out, it.savedJob())
		}
		if start = res.LastEvaluatedKey; len(start) == 0 {
			return out, nil
		}
	}
}

// dueAt is the condition that a saved job's next due time is still t: it has been neither paused
// (which removes next_due) nor moved since t was read.
func dueAt(t time.Time) expression.ConditionBuilder {
	return expression.Name("next_due").Equal(expression.Value(dueKey(t)))
}

// Claim implements savedjob.DueStore: a put of (saved job, due time) that only the first
// scheduler's succeeds, and only while the saved job's next due time is still read, the one the
// by_due index gave. The index may lag a change by a moment: a schedule paused or moved just
// before a fire is not started from its stale entry.
func (s *SavedJobStore) Claim(ctx context.Context, id string, due, read time.Time) (bool, error) {
	item := map[string]types.AttributeValue{
		resources.AttrPK:       &types.AttributeValueMemberS{Value: "FIRE#" + id},
		resources.AttrSK:       &types.AttributeValueMemberS{Value: dueKey(due)},
		resources.TTLAttribute: &types.AttributeValueMemberN{Value: strconv.FormatInt(due.Add(claimTTL).Unix(), 10)},
	}
	absent, err := buildCondition(itemAbsent())
	if err != nil {
		return false, err
	}
	still, err := expression.NewBuilder().WithCondition(dueAt(read)).Build()
	if err != nil {
		return false, fmt.Errorf("build saved job due condition: %w", err)
	}
	err = transact(ctx, s.db,
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: item, ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names()}},
		types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.table), Key: itemKey(savedJobPK, id),
			ConditionExpression: still.Condition(), ExpressionAttributeNames: still.Names(), ExpressionAttributeValues: still.Values()}},
	)
	switch {
	case err == nil:
		return true, nil
	case onlyConditionFailed(err):
		return false, nil // claimed by another scheduler, or no longer due then
	}
	return false, fmt.Errorf("claim saved job %s at %s: %w", id, dueKey(due), err)
}

// Advance implements savedjob.DueStore. A pause is a visible change and takes a new version;
// moving the due time on does not (it would fail every If-Match of a minute-ly schedule).
func (s *SavedJobStore) Advance(ctx context.Context, id string, prev, next time.Time, pausedReason string) error {
	var upd expression.UpdateBuilder
	if pausedReason != "" {
		upd = expression.Set(expression.Name("schedule.enabled"), expression.Value(false)).
			Set(expression.Name("schedule.paused_reason"), expression.Value(pausedReason)).
			Add(expression.Name("version"), expression.Value(1)).
			Remove(expression.Name("next_due")).Remove(expression.Name(resources.AttrGSI1PK)).Remove(expression.Name(resources.AttrGSI1SK))
	} else {
		n := dueKey(next)
		upd = expression.Set(expression.Name("next_due"), expression.Value(n)).
			Set(expression.Name(resources.AttrGSI1PK), expression.Value(duePK)).
			Set(expression.Name(resources.AttrGSI1SK), expression.Value(n+"#"+id))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(dueAt(prev)).Build()
	if err != nil {
		return fmt.Errorf("build saved job advance: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: itemKey(savedJobPK, id), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	switch {
	case err == nil:
		return nil
	case isConditionFailed(err):
		return savedjob.ErrConflict
	}
	return fmt.Errorf("advance saved job %s: %w", id, err)
}
