package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
)

// Item layout of the connections table:
//
//	CONN#<conn>  META        the connection: sub, email, role, connected_at
//	CONN#<conn>  SUB#<job>   the connection's own list of its subscriptions (for cleanup)
//	SUB#<job>    <conn>      a subscription, found by job when progress is pushed
//
// Every item carries expires_at (the connection's end), so DynamoDB TTL removes what a lost
// $disconnect leaves behind.
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

func connKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{resources.AttrPK: sv(pk), resources.AttrSK: sv(sk)}
}

// PutConnection stores a new connection.
func (s *ConnectionStore) PutConnection(ctx context.Context, c live.Connection) error {
	item := connKey(connPrefix+c.ID, connMetaSK)
	item["sub"] = sv(c.Identity.Subject)
	if c.Identity.Email != "" {
		item["email"] = sv(c.Identity.Email)
	}
	if c.Identity.Role != "" {
		item["role"] = sv(string(c.Identity.Role))
	}
	item["connected_at"] = sv(c.ConnectedAt.UTC().Format(time.RFC3339Nano))
	item[resources.TTLAttribute] = nv(c.ExpiresAt.Unix())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("put connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection returns a connection; live.ErrNotFound when it does not exist or has expired.
func (s *ConnectionStore) GetConnection(ctx context.Context, id string) (live.Connection, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: connKey(connPrefix+id, connMetaSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return live.Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if out.Item == nil {
		return live.Connection{}, live.ErrNotFound
	}
	c := live.Connection{ID: id, Identity: auth.Identity{Subject: attrStr(out.Item["sub"]), Email: attrStr(out.Item["email"])}}
	if r, ok := auth.ParseRole(attrStr(out.Item["role"])); ok {
		c.Identity.Role = r
	}
	c.ConnectedAt, _ = time.Parse(time.RFC3339Nano, attrStr(out.Item["connected_at"]))
	c.ExpiresAt = attrEpoch(out.Item[resources.TTLAttribute])
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(s.now()) {
		return live.Connection{}, live.ErrNotFound
	}
	return c, nil
}

// Subscribe writes the subscription and the connection's record of it in one transaction that
// requires the connection to exist.
func (s *ConnectionStore) Subscribe(ctx context.Context, connID, jobID string, expires time.Time) error {
	exp := nv(expires.Unix())
	sub := connKey(subPrefix+jobID, connID)
	sub[resources.TTLAttribute] = exp
	own := connKey(connPrefix+connID, subPrefix+jobID)
	own[resources.TTLAttribute] = exp
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.table), Key: connKey(connPrefix+connID, connMetaSK),
			ConditionExpression: aws.String("attribute_exists(pk)"),
		}},
		{Put: &types.Put{TableName: aws.String(s.table), Item: sub}},
		{Put: &types.Put{TableName: aws.String(s.table), Item: own}},
	}})
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
	return s.deleteKeys(ctx, []map[string]types.AttributeValue{connKey(subPrefix+jobID, connID), connKey(connPrefix+connID, subPrefix+jobID)})
}

// DeleteConnection removes a connection, its subscriptions and its records of them.
func (s *ConnectionStore) DeleteConnection(ctx context.Context, id string) error {
	var keys []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(connPrefix + id)},
			ProjectionExpression:      aws.String("sk"), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("list items of connection %s: %w", id, err)
		}
		for _, it := range out.Items {
			sk := attrStr(it[resources.AttrSK])
			keys = append(keys, connKey(connPrefix+id, sk))
			if job, ok := strings.CutPrefix(sk, subPrefix); ok {
				keys = append(keys, connKey(subPrefix+job, id))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	// The META item may be gone already; delete it anyway so a half-finished cleanup completes.
	if len(keys) == 0 {
		keys = append(keys, connKey(connPrefix+id, connMetaSK))
	}
	return s.deleteKeys(ctx, keys)
}

// deleteKeys deletes items in batches of 25, retrying unprocessed ones.
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

// Subscribers lists the unexpired connections subscribed to a job.
func (s *ConnectionStore) Subscribers(ctx context.Context, jobID string) ([]string, error) {
	var conns []string
	var start map[string]types.AttributeValue
	now := s.now()
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(subPrefix + jobID)},
			ProjectionExpression:      aws.String("sk, " + resources.TTLAttribute), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("list subscribers of job %s: %w", jobID, err)
		}
		for _, it := range out.Items {
			if exp := attrEpoch(it[resources.TTLAttribute]); !exp.IsZero() && exp.Before(now) {
				continue
			}
			conns = append(conns, attrStr(it[resources.AttrSK]))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return conns, nil
		}
		start = out.LastEvaluatedKey
	}
}

func attrStr(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func attrEpoch(v types.AttributeValue) time.Time {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil && secs > 0 {
			return time.Unix(secs, 0).UTC()
		}
	}
	return time.Time{}
}
