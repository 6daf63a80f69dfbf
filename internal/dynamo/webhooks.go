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

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/webhook"
)

// webhookPK is the one partition of the webhooks table that holds every webhook: they are few,
// and every event's fan-out reads them all with one Query. Each webhook's delivery log is a
// partition of its own (webhookLogPrefix + id), newest attempt last by sort key, expiring by TTL.
const (
	webhookPK        = "HOOK"
	webhookLogPrefix = "LOG#"
)

// WebhookStore keeps webhooks and their delivery logs in the webhooks table (webhook.Store). URLs
// and signing secrets live in the secret store, never here.
type WebhookStore struct {
	db    API
	table string
	recs  records[webhook.Webhook, webhookItem]
}

// NewWebhookStore returns a store over the named webhooks table.
func NewWebhookStore(db API, table string) (*WebhookStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new webhook store: client and table name are required")
	}
	return &WebhookStore{db: db, table: table, recs: records[webhook.Webhook, webhookItem]{
		db: db, table: table, pk: webhookPK, noun: "webhook", toItem: webhookToItem, fromItem: webhookItem.webhook,
		id: func(r webhook.Webhook) string { return r.ID }, exists: webhook.ErrExists, notFound: webhook.ErrNotFound, conflict: webhook.ErrConflict,
	}}, nil
}

type webhookItem struct {
	PK                string    `dynamodbav:"pk"`
	SK                string    `dynamodbav:"sk"`
	ID                string    `dynamodbav:"id"`
	Name              string    `dynamodbav:"name"`
	Endpoint          string    `dynamodbav:"endpoint"`
	Events            []string  `dynamodbav:"events"`
	Format            string    `dynamodbav:"format"`
	Enabled           bool      `dynamodbav:"enabled"`
	DisabledReason    string    `dynamodbav:"disabled_reason,omitempty"`
	AllowPrivateCIDRs []string  `dynamodbav:"allow_private_cidrs"`
	FailedDeliveries  int       `dynamodbav:"failed_deliveries"`
	Version           int64     `dynamodbav:"version"`
	CreatedAt         time.Time `dynamodbav:"created_at"`
	UpdatedAt         time.Time `dynamodbav:"updated_at"`
}

func webhookToItem(h webhook.Webhook) webhookItem {
	return webhookItem{
		PK: webhookPK, SK: h.ID, ID: h.ID, Name: h.Name, Endpoint: h.Endpoint, Events: h.Events, Format: string(h.Format),
		Enabled: h.Enabled, DisabledReason: h.DisabledReason, AllowPrivateCIDRs: h.AllowPrivateCIDRs, FailedDeliveries: h.FailedDeliveries,
		Version: h.Version, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
}

func (it webhookItem) webhook() webhook.Webhook {
	return webhook.Webhook{
		ID: it.ID, Name: it.Name, Endpoint: it.Endpoint, Events: it.Events, Format: webhook.Format(it.Format),
		Enabled: it.Enabled, DisabledReason: it.DisabledReason, AllowPrivateCIDRs: it.AllowPrivateCIDRs, FailedDeliveries: it.FailedDeliveries,
		Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
}

func webhookKey(id string) map[string]types.AttributeValue { return itemKey(webhookPK, id) }

// Create implements webhook.Store.
func (s *WebhookStore) Create(ctx context.Context, h webhook.Webhook) error {
	return s.recs.create(ctx, h)
}

// Get implements webhook.Store.
func (s *WebhookStore) Get(ctx context.Context, id string) (webhook.Webhook, error) {
	return s.recs.get(ctx, id)
}

// webhookAdminAttrs are the attributes an admin's update writes. failed_deliveries is not one
// of them: the notifier counts it with atomic updates that a full-item write would overwrite.
var webhookAdminAttrs = []string{"name", "endpoint", "events", "format", "enabled", "disabled_reason", "allow_private_cidrs", "version", "updated_at"}

// Update implements webhook.Store: one UpdateItem that sets the admin's attributes (an absent
// one is removed) on the stored version prevVersion, and resets the failure count only when
// asked, so a failure counted meanwhile is kept.
func (s *WebhookStore) Update(ctx context.Context, h webhook.Webhook, prevVersion int64, resetFailures bool) error {
	item, err := attributevalue.MarshalMap(webhookToItem(h))
	if err != nil {
		return fmt.Errorf("marshal webhook %s: %w", h.ID, err)
	}
	var upd expression.UpdateBuilder
	for _, a := range webhookAdminAttrs {
		if v, ok := item[a]; ok {
			upd = upd.Set(expression.Name(a), expression.Value(v))
		} else {
			upd = upd.Remove(expression.Name(a))
		}
	}
	if resetFailures {
		upd = upd.Set(expression.Name("failed_deliveries"), expression.Value(0))
	}
	_, done, err := s.update(ctx, h.ID, upd, itemExists().And(expression.Name("version").Equal(expression.Value(prevVersion))), "update")
	if err != nil {
		return err
	}
	if !done {
		return webhook.ErrConflict
	}
	return nil
}

// Delete implements webhook.Store.
func (s *WebhookStore) Delete(ctx context.Context, id string, version int64) error {
	return s.recs.delete(ctx, id, version)
}

// List implements webhook.Store: one Query of the webhooks' partition.
func (s *WebhookStore) List(ctx context.Context) ([]webhook.Webhook, error) {
	return s.recs.list(ctx)
}

// update runs one conditional UpdateItem on webhook id; ok is false when the condition failed
// on an existing webhook, webhook.ErrNotFound when there is none.
func (s *WebhookStore) update(ctx context.Context, id string, upd expression.UpdateBuilder, cond expression.ConditionBuilder, what string) (map[string]types.AttributeValue, bool, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("build %s: %w", what, err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: webhookKey(id), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ReturnValues: types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, failed := conditionFailedItem(err); failed {
		if old == nil {
			return nil, false, webhook.ErrNotFound
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s of webhook %s: %w", what, id, err)
	}
	return out.Attributes, true, nil
}

// AddFailure implements webhook.Store: an atomic ADD, so concurrent deliveries count each.
func (s *WebhookStore) AddFailure(ctx context.Context, id string) (int, error) {
	attrs, _, err := s.update(ctx, id, expression.Add(expression.Name("failed_deliveries"), expression.Value(1)), itemExists(), "count a failed delivery")
	if err != nil {
		return 0, err
	}
	var out struct {
		N int `dynamodbav:"failed_deliveries"`
	}
	if err := attributevalue.UnmarshalMap(attrs, &out); err != nil {
		return 0, fmt.Errorf("unmarshal failed deliveries of webhook %s: %w", id, err)
	}
	return out.N, nil
}

// ResetFailures implements webhook.Store: a conditional SET, so a webhook with no failures is
// not written, and a failure counted after the caller read the webhook is still reset.
func (s *WebhookStore) ResetFailures(ctx context.Context, id string) error {
	_, _, err := s.update(ctx, id, expression.Set(expression.Name("failed_deliveries"), expression.Value(0)),
		itemExists().And(expression.Name("failed_deliveries").GreaterThan(expression.Value(0))), "reset failed deliveries")
	return err
}

// Disable implements webhook.Store: conditional on the webhook being enabled, and a new version,
// so an admin's edit based on the enabled webhook conflicts rather than enabling it again.
func (s *WebhookStore) Disable(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	upd := expression.Set(expression.Name("enabled"), expression.Value(false)).
		Set(expression.Name("disabled_reason"), expression.Value(reason)).
		Set(expression.Name("updated_at"), expression.Value(at.UTC().Format(time.RFC3339Nano))).
		Add(expression.Name("version"), expression.Value(1))
	_, done, err := s.update(ctx, id, upd, itemExists().And(expression.Name("enabled").Equal(expression.Value(true))), "disable")
	return done, err
}

type attemptItem struct {
	PK            string     `dynamodbav:"pk"`
	SK            string     `dynamodbav:"sk"`
	WebhookID     string     `dynamodbav:"webhook_id"`
	DeliveryID    string     `dynamodbav:"delivery_id"`
	EventID       string     `dynamodbav:"event_id"`
	DetailType    string     `dynamodbav:"detail_type"`
	Attempt       int        `dynamodbav:"attempt"`
	StatusCode    int        `dynamodbav:"status_code,omitempty"`
	Error         string     `dynamodbav:"error,omitempty"`
	Outcome       string     `dynamodbav:"outcome"`
	DurationMS    int64      `dynamodbav:"duration_ms"`
	At            time.Time  `dynamodbav:"at"`
	NextAttemptAt *time.Time `dynamodbav:"next_attempt_at,omitempty"`
	ExpiresAt     int64      `dynamodbav:"expires_at,omitempty"`
}

// PutAttempt implements webhook.Store.
func (s *WebhookStore) PutAttempt(ctx context.Context, a webhook.Attempt, expires time.Time) error {
	item, err := attributevalue.MarshalMap(attemptItem{
		PK: webhookLogPrefix + a.WebhookID, SK: a.ID, WebhookID: a.WebhookID, DeliveryID: a.DeliveryID, EventID: a.EventID, DetailType: a.DetailType,
		Attempt: a.Attempt, StatusCode: a.StatusCode, Error: a.Error, Outcome: string(a.Outcome), DurationMS: a.Duration.Milliseconds(),
		At: a.At, NextAttemptAt: a.NextAttemptAt, ExpiresAt: expiry(expires),
	})
	if err != nil {
		return fmt.Errorf("marshal attempt of webhook %s: %w", a.WebhookID, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("put attempt of webhook %s: %w", a.WebhookID, err)
	}
	return nil
}

// Attempts implements webhook.Store: one page of the webhook's log partition, newest first.
// Attempts past their TTL that DynamoDB has not deleted yet are left out.
func (s *WebhookStore) Attempts(ctx context.Context, id, cursor string, limit int) ([]webhook.Attempt, string, error) {
	pk := webhookLogPrefix + id
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK)
	if !ok {
		return nil, "", fault.ErrBadCursor
	}
	if start != nil {
		if v, _ := start[resources.AttrPK].(*types.AttributeValueMemberS); v == nil || v.Value != pk || len(start) != 2 {
			return nil, "", fault.ErrBadCursor
		}
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(resources.AttrPK).Equal(expression.Value(pk))).
		WithFilter(expression.Name(resources.TTLAttribute).AttributeNotExists().Or(expression.Name(resources.TTLAttribute).GreaterThan(expression.Value(&types.AttributeValueMemberN{Value: now})))).
		Build()
	if err != nil {
		return nil, "", fmt.Errorf("build query: %w", err)
	}
	res, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return nil, "", fmt.Errorf("query deliveries of webhook %s: %w", id, err)
	}
	var items []attemptItem
	if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
		return nil, "", fmt.Errorf("unmarshal deliveries of webhook %s: %w", id, err)
	}
	out := make([]webhook.Attempt, len(items))
	for i, it := range items {
		out[i] = webhook.Attempt{
			ID: it.SK, WebhookID: it.WebhookID, DeliveryID: it.DeliveryID, EventID: it.EventID, DetailType: it.DetailType, Attempt: it.Attempt,
			StatusCode: it.StatusCode, Error: it.Error, Outcome: webhook.Outcome(it.Outcome), Duration: time.Duration(it.DurationMS) * time.Millisecond,
			At: it.At, NextAttemptAt: it.NextAttemptAt,
		}
	}
	next, err := encodeCursor(res.LastEvaluatedKey)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

var _ webhook.Store = (*WebhookStore)(nil)
