package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
}

// NewSavedJobStore returns a store over the named saved jobs table.
func NewSavedJobStore(db API, table string) (*SavedJobStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new saved job store: client and table name are required")
	}
	return &SavedJobStore{db: db, table: table}, nil
}

type savedJobItem struct {
	PK         string            `dynamodbav:"pk"`
	SK         string            `dynamodbav:"sk"`
	ID         string            `dynamodbav:"id"`
	Name       string            `dynamodbav:"name"`
	Command    string            `dynamodbav:"command"`
	Commands   []bulk.Command    `dynamodbav:"commands,omitempty"`
	Options    bulk.Options      `dynamodbav:"options"`
	Selector   savedjob.Selector `dynamodbav:"selector"`
	Owner      string            `dynamodbav:"owner"`
	Grants     bulk.Grants       `dynamodbav:"grants"`
	AnswersKey string            `dynamodbav:"answers_key,omitempty"`
	Version    int64             `dynamodbav:"version"`
	CreatedAt  time.Time         `dynamodbav:"created_at"`
	UpdatedAt  time.Time         `dynamodbav:"updated_at"`
}

func savedJobToItem(j savedjob.SavedJob) savedJobItem {
	return savedJobItem{
		PK: savedJobPK, SK: j.ID, ID: j.ID, Name: j.Name, Command: j.Command, Commands: bulk.Redacted(j.Commands), Options: j.Options,
		Selector: j.Selector, Owner: j.Owner, Grants: j.Grants, AnswersKey: j.AnswersKey, Version: j.Version, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
}

func (it savedJobItem) savedJob() savedjob.SavedJob {
	return savedjob.SavedJob{
		ID: it.ID, Name: it.Name, Command: it.Command, Commands: it.Commands, Options: it.Options, Selector: it.Selector,
		Owner: it.Owner, Grants: it.Grants, AnswersKey: it.AnswersKey, Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
}

// Create implements savedjob.Store.
func (s *SavedJobStore) Create(ctx context.Context, j savedjob.SavedJob) error {
	return putNew(ctx, s.db, s.table, savedJobToItem(j), savedjob.ErrExists, "saved job "+j.ID)
}

// Get implements savedjob.Store.
func (s *SavedJobStore) Get(ctx context.Context, id string) (savedjob.SavedJob, error) {
	it, found, err := getItem[savedJobItem](ctx, s.db, s.table, itemKey(savedJobPK, id), "saved job "+id)
	if err != nil {
		return savedjob.SavedJob{}, err
	}
	if !found {
		return savedjob.SavedJob{}, savedjob.ErrNotFound
	}
	return it.savedJob(), nil
}

// Update implements savedjob.Store.
func (s *SavedJobStore) Update(ctx context.Context, j savedjob.SavedJob, prevVersion int64) error {
	item, err := attributevalue.MarshalMap(savedJobToItem(j))
	if err != nil {
		return fmt.Errorf("marshal saved job %s: %w", j.ID, err)
	}
	return versioned(putIfVersion(ctx, s.db, s.table, item, prevVersion), savedjob.ErrNotFound, savedjob.ErrConflict, "update saved job "+j.ID)
}

// Delete implements savedjob.Store.
func (s *SavedJobStore) Delete(ctx context.Context, id string, version int64) error {
	return versioned(deleteIfVersion(ctx, s.db, s.table, itemKey(savedJobPK, id), version), savedjob.ErrNotFound, savedjob.ErrConflict, "delete saved job "+id)
}

// List implements savedjob.Store: one page of the saved jobs' partition.
func (s *SavedJobStore) List(ctx context.Context, cursor string, limit int) ([]savedjob.SavedJob, string, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK)
	if !ok {
		return nil, "", fault.ErrBadCursor
	}
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(resources.AttrPK).Equal(expression.Value(savedJobPK))).Build()
	if err != nil {
		return nil, "", fmt.Errorf("build key condition: %w", err)
	}
	res, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(), ExclusiveStartKey: start, Limit: aws.Int32(int32(limit)),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
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
