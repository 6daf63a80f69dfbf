package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
)

// Item layout of the connections table:
//
//	CONN#<conn>  META        the connection: sub, email, role, sites, connected_at
//	CONN#<conn>  SUB#<job>   the connection's own list of its subscriptions (for cleanup)
//	SUB#<job>    <conn>      a subscription, found by job when progress is pushed
//
// Every item carries expires_at (the connection's end: its token's expiry, at most API Gateway's
// two hours), so DynamoDB TTL removes what a lost $disconnect leaves behind.
const (
	connPrefix = "CONN#"
	connMetaSK = "META"
	subPrefix  = "SUB#"
)

// ConnectionStore keeps WebSocket connections and subscriptions; it implements live.Store.
type ConnectionStore struct {
	db    API
	table string
	now   func() time.Time
}

// NewConnectionStore returns a store over the named connections table.
func NewConnectionStore(db API, table string) (*ConnectionStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new connection store: client and table name are required")
	}
	return &ConnectionStore{db: db, table: table, now: time.Now}, nil
}

var _ live.Store = (*ConnectionStore)(nil)

// connItem is a connection's META item.
type connItem struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Subject string `dynamodbav:"sub"`
	Email   string `dynamodbav:"email,omitempty"`
	Role    string `dynamodbav:"role,omitempty"`
	// Sites are the roles held on single sites, site → role (auth.Identity.Sites).
	Sites       map[string]string `dynamodbav:"sites,omitempty"`
	ConnectedAt time.Time         `dynamodbav:"connected_at"`
	ExpiresAt   int64             `dynamodbav:"expires_at"`
}

// subItem is a subscription, or a connection's record of one: a key that expires.
type subItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
}

// epoch is a TTL attribute as a time; the zero time when it is unset.
func epoch(secs int64) time.Time {
	if secs <= 0 {
		return time.Time{}
	}
	return time.Unix(secs, 0).UTC()
}

// PutConnection stores a new connection.
func (s *ConnectionStore) PutConnection(ctx context.Context, c live.Connection) error {
	it := connItem{
		PK: connPrefix + c.ID, SK: connMetaSK, Subject: c.Identity.Subject, Email: c.Identity.Email,
		Role: string(c.Identity.Role), ConnectedAt: c.ConnectedAt.UTC(), ExpiresAt: c.ExpiresAt.Unix(),
	}
	for site, r := range c.Identity.Sites {
		if it.Sites == nil {
			it.Sites = map[string]string{}
		}
		it.Sites[site] = string(r)
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal connection %s: %w", c.ID, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("put connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection returns a connection; live.ErrNotFound when it does not exist, live.ErrExpired
// when its token has expired.
func (s *ConnectionStore) GetConnection(ctx context.Context, id string) (live.Connection, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: itemKey(connPrefix+id, connMetaSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return live.Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if out.Item == nil {
		return live.Connection{}, live.ErrNotFound
	}
	var it connItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return live.Connection{}, fmt.Errorf("unmarshal connection %s: %w", id, err)
	}
	c := live.Connection{
		ID: id, Identity: auth.Identity{Subject: it.Subject, Email: it.Email},
		ConnectedAt: it.ConnectedAt, ExpiresAt: epoch(it.ExpiresAt),
	}
	if r, ok := auth.ParseRole(it.Role); ok {
		c.Identity.Role = r
	}
	for site, name := range it.Sites {
		if r, ok := auth.ParseRole(name); ok {
			if c.Identity.Sites == nil {
				c.Identity.Sites = map[string]auth.Role{}
			}
			c.Identity.Sites[site] = r
		}
	}
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(s.now()) {
		return live.Connection{}, live.ErrExpired
	}
	return c, nil
}

// Subscribe writes the subscription and the connection's record of it in one transaction that
// requires the connection to exist.
func (s *ConnectionStore) Subscribe(ctx context.Context, connID, jobID string, expires time.Time) error {
	sub, err := attributevalue.MarshalMap(subItem{PK: subPrefix + jobID, SK: connID, ExpiresAt: expires.Unix()})
	if err != nil {
		return fmt.Errorf("marshal subscription of %s to %s: %w", connID, jobID, err)
	}
	own, err := attributevalue.MarshalMap(subItem{PK: connPrefix + connID, SK: subPrefix + jobID, ExpiresAt: expires.Unix()})
	if err != nil {
		return fmt.Errorf("marshal subscription of %s to %s: %w", connID, jobID, err)
	}
	connected, err := buildCondition(itemExists())
	if err != nil {
		return err
	}
	err = transact(ctx, s.db,
		types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.table), Key: itemKey(connPrefix+connID, connMetaSK),
			ConditionExpression: connected.Condition(), ExpressionAttributeNames: connected.Names(),
		}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: sub}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: own}},
	)
	if onlyConditionFailed(err) {
		return live.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", connID, jobID, err)
	}
	return nil
}

// Unsubscribe removes a subscription and the connection's record of it.
func (s *ConnectionStore) Unsubscribe(ctx context.Context, connID, jobID string) error {
	return s.deleteKeys(ctx, []map[string]types.AttributeValue{itemKey(subPrefix+jobID, connID), itemKey(connPrefix+connID, subPrefix+jobID)})
}

// partition reads the given attributes of every item of partition pk, strongly consistent.
func (s *ConnectionStore) partition(ctx context.Context, pk string, what string, attrs ...string) ([]subItem, error) {
	proj := expression.NamesList(expression.Name(resources.AttrSK))
	for _, a := range attrs {
		proj = proj.AddNames(expression.Name(a))
	}
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(resources.AttrPK).Equal(expression.Value(pk))).WithProjection(proj).Build()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return queryAll[subItem](ctx, s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	}, what)
}

// DeleteConnection removes a connection, its subscriptions and its records of them.
func (s *ConnectionStore) DeleteConnection(ctx context.Context, id string) error {
	items, err := s.partition(ctx, connPrefix+id, "items of connection "+id)
	if err != nil {
		return err
	}
	var keys []map[string]types.AttributeValue
	for _, it := range items {
		keys = append(keys, itemKey(connPrefix+id, it.SK))
		if job, ok := strings.CutPrefix(it.SK, subPrefix); ok {
			keys = append(keys, itemKey(subPrefix+job, id))
		}
	}
	// The META item may be gone already; delete it anyway so a half-finished cleanup completes.
	if len(keys) == 0 {
		keys = append(keys, itemKey(connPrefix+id, connMetaSK))
	}
	return s.deleteKeys(ctx, keys)
}

// deleteKeys deletes items with batch writes.
func (s *ConnectionStore) deleteKeys(ctx context.Context, keys []map[string]types.AttributeValue) error {
	reqs := make([]types.WriteRequest, 0, len(keys))
	for _, k := range keys {
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
	}
	if err := batchWrite(ctx, s.db, s.table, reqs); err != nil {
		return fmt.Errorf("delete %d connection items: %w", len(reqs), err)
	}
	return nil
}

// Subscribers lists the unexpired connections subscribed to a job. The subscription of a
// connection whose token has expired is left out and deleted (best effort: TTL removes what a
// failed delete leaves).
func (s *ConnectionStore) Subscribers(ctx context.Context, jobID string) ([]string, error) {
	items, err := s.partition(ctx, subPrefix+jobID, "subscribers of job "+jobID, resources.TTLAttribute)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var conns []string
	for _, it := range items {
		if exp := epoch(it.ExpiresAt); !exp.IsZero() && !exp.After(now) {
			_ = s.Unsubscribe(ctx, it.SK, jobID)
			continue
		}
		conns = append(conns, it.SK)
	}
	return conns, nil
}
