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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/resources"
)

// profilePK is the one partition of the devices table that holds every credential profile:
// profiles are few and change at the pace of people, and one Query lists them all. Device
// listings read only items whose sort key is deviceSK, so they never see a profile.
const profilePK = "CPROF"

// ProfileStore keeps credential profile metadata in the devices table (credprofile.Store). The
// secrets live in the secret store, never here.
type ProfileStore struct {
	db    API
	table string
	recs  records[credprofile.Profile, profileItem]
}

// NewProfileStore returns a store over the named devices table.
func NewProfileStore(db API, table string) (*ProfileStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new profile store: client and table name are required")
	}
	return &ProfileStore{db: db, table: table, recs: records[credprofile.Profile, profileItem]{
		db: db, table: table, pk: profilePK, noun: "credential profile", toItem: profileToItem, fromItem: profileItem.profile,
		id: func(r credprofile.Profile) string { return r.ID }, exists: credprofile.ErrExists, notFound: credprofile.ErrNotFound, conflict: credprofile.ErrConflict,
	}}, nil
}

type profileItem struct {
	PK           string              `dynamodbav:"pk"`
	SK           string              `dynamodbav:"sk"`
	ID           string              `dynamodbav:"id"`
	Username     string              `dynamodbav:"username,omitempty"`
	AllowedSites []string            `dynamodbav:"allowed_sites"`
	AllowedTags  []map[string]string `dynamodbav:"allowed_tags"`
	HasSecret    bool                `dynamodbav:"has_secret"`
	HasEnable    bool                `dynamodbav:"has_enable_secret,omitempty"`
	Version      int64               `dynamodbav:"version"`
	CreatedAt    time.Time           `dynamodbav:"created_at"`
	UpdatedAt    time.Time           `dynamodbav:"updated_at"`
}

func profileToItem(p credprofile.Profile) profileItem {
	sites, tags := p.AllowedSites, p.AllowedTags
	if sites == nil {
		sites = []string{}
	}
	if tags == nil {
		tags = []map[string]string{}
	}
	return profileItem{
		PK: profilePK, SK: p.ID, ID: p.ID, Username: p.Username, AllowedSites: sites, AllowedTags: tags,
		HasSecret: p.HasSecret, HasEnable: p.HasEnableSecret, Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

func (it profileItem) profile() credprofile.Profile {
	p := credprofile.Profile{
		ID: it.ID, Username: it.Username, AllowedSites: it.AllowedSites, AllowedTags: it.AllowedTags,
		HasSecret: it.HasSecret, HasEnableSecret: it.HasEnable, Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
	if p.AllowedSites == nil {
		p.AllowedSites = []string{}
	}
	if p.AllowedTags == nil {
		p.AllowedTags = []map[string]string{}
	}
	return p
}

// Create stores a new profile; credprofile.ErrExists when the id is taken.
func (s *ProfileStore) Create(ctx context.Context, p credprofile.Profile) error {
	return s.recs.create(ctx, p)
}

// Get returns one profile; credprofile.ErrNotFound when there is none.
func (s *ProfileStore) Get(ctx context.Context, id string) (credprofile.Profile, error) {
	return s.recs.get(ctx, id)
}

// Update replaces a profile if its stored version is prevVersion.
func (s *ProfileStore) Update(ctx context.Context, p credprofile.Profile, prevVersion int64) error {
	return s.recs.update(ctx, p, prevVersion)
}

// Delete removes a profile if its stored version is version.
func (s *ProfileStore) Delete(ctx context.Context, id string, version int64) error {
	return s.recs.delete(ctx, id, version)
}

// List returns every profile by id: one Query of the profiles' partition.
func (s *ProfileStore) List(ctx context.Context) ([]credprofile.Profile, error) {
	return s.recs.list(ctx)
}

// UsedBy returns up to limit ids of devices naming profile id (see scanDeviceIDs).
func (s *ProfileStore) UsedBy(ctx context.Context, id string, limit int) ([]string, error) {
	_, ids, err := scanDeviceIDs(ctx, s.db, s.table, expression.Name("credential_profile").Equal(expression.Value(id)), limit)
	if err != nil {
		return nil, fmt.Errorf("scan devices of credential profile %s: %w", id, err)
	}
	return ids, nil
}

// putNew stores item (a struct of dynamodbav fields) unless an item with its key exists, which it
// answers with exists; what names the item in errors.
func putNew(ctx context.Context, db API, table string, item any, exists error, what string) error {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", what, err)
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table), Item: av,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	if isConditionFailed(err) {
		return exists
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", what, err)
	}
	return nil
}

// scanDeviceIDs counts the devices matching filter and returns up to limit of their ids. It scans
// the devices table: it serves the deletes of credential profiles and jump hosts, which are rare,
// and an index kept for them would cost a write on every device change.
func scanDeviceIDs(ctx context.Context, db API, table string, filter expression.ConditionBuilder, limit int) (int, []string, error) {
	expr, err := expression.NewBuilder().
		WithFilter(expression.Name(resources.AttrSK).Equal(expression.Value(deviceSK)).And(filter)).
		WithProjection(expression.NamesList(expression.Name("id"))).Build()
	if err != nil {
		return 0, nil, fmt.Errorf("build filter: %w", err)
	}
	count := 0
	var ids []string
	var start map[string]types.AttributeValue
	for {
		res, err := db.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
			FilterExpression: expr.Filter(), ProjectionExpression: expr.Projection(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		if err != nil {
			return 0, nil, err
		}
		for _, item := range res.Items {
			if count++; len(ids) >= limit {
				continue
			}
			var it struct {
				ID string `dynamodbav:"id"`
			}
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return 0, nil, fmt.Errorf("unmarshal device id: %w", err)
			}
			ids = append(ids, it.ID)
		}
		if start = res.LastEvaluatedKey; len(start) == 0 {
			return count, ids, nil
		}
	}
}
