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

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
)

// AuditStore is the append-only audit trail in the audit table. An entry's item is keyed by its
// UTC day (pk DAY#yyyy-mm-dd) and its time-sortable id (sk), so the whole trail is listed
// newest first day by day; the by_actor and by_target indexes list one actor's or one target's
// entries. It only ever puts items, each on the condition that none with its key exists: the
// functions' IAM grants no update or delete on the table, and entries leave only by TTL.
//
// Write rate: one entry per audited API request, two per bulk job (start, finish) however many
// devices it has, one per purge, one per refusal before a device runs. A day partition takes
// about 1,000 writes a second, so the trail is sized for that many audited actions a second.
type AuditStore struct {
	db    API
	table string
	// keep is how long entries live (TTL); 0 keeps them forever.
	keep time.Duration
	now  func() time.Time
	// maxDayQueries bounds the day partitions one page reads, so a sparse trail costs a bounded
	// number of queries per page (the page then comes back short, with a cursor).
	maxDayQueries int
}

// auditMaxDayQueries is how many day partitions one listing page reads at most.
const auditMaxDayQueries = 62

// NewAuditStore returns the audit store over the named table; entries expire keep after they
// were made (0: never).
func NewAuditStore(db API, table string, keep time.Duration) (*AuditStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new audit store: client and table name are required")
	}
	if keep < 0 {
		return nil, errors.New("new audit store: retention must not be negative")
	}
	return &AuditStore{db: db, table: table, keep: keep, now: func() time.Time { return time.Now().UTC() }, maxDayQueries: auditMaxDayQueries}, nil
}

// auditItem is an entry as stored.
type auditItem struct {
	PK        string            `dynamodbav:"pk"`
	SK        string            `dynamodbav:"sk"`
	GSI1PK    string            `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK    string            `dynamodbav:"gsi1sk,omitempty"`
	GSI2PK    string            `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK    string            `dynamodbav:"gsi2sk,omitempty"`
	ID        string            `dynamodbav:"id"`
	At        time.Time         `dynamodbav:"at"`
	Actor     string            `dynamodbav:"actor,omitempty"`
	Role      string            `dynamodbav:"role,omitempty"`
	Action    string            `dynamodbav:"action"`
	Target    string            `dynamodbav:"target,omitempty"`
	Outcome   string            `dynamodbav:"outcome"`
	Reason    string            `dynamodbav:"reason,omitempty"`
	RequestID string            `dynamodbav:"request_id,omitempty"`
	Source    string            `dynamodbav:"source,omitempty"`
	Detail    map[string]string `dynamodbav:"detail,omitempty"`
	ExpiresAt int64             `dynamodbav:"expires_at,omitempty"`
}

const (
	auditDayPrefix    = "DAY#"
	auditActorPrefix  = "ACTOR#"
	auditTargetPrefix = "TARGET#"
)

func auditDayPK(t time.Time) string { return auditDayPrefix + t.UTC().Format(time.DateOnly) }

// Record appends e, which must carry its id and time (audit.Trail completes them). An entry whose
// id is already stored is refused with audit.ErrDuplicateID, never overwritten.
func (s *AuditStore) Record(ctx context.Context, e audit.Entry) error {
	if e.ID == "" || e.Time.IsZero() || e.Action == "" {
		return errors.New("put audit entry: id, time and action are required")
	}
	it := auditItem{
		PK: auditDayPK(e.Time), SK: e.ID, ID: e.ID, At: e.Time.UTC(), Actor: e.Actor, Role: e.Role, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, Reason: e.Reason, RequestID: e.RequestID, Source: e.Source, Detail: e.Detail,
	}
	if e.Actor != "" {
		it.GSI1PK, it.GSI1SK = auditActorPrefix+e.Actor, e.ID
	}
	if e.Target != "" {
		it.GSI2PK, it.GSI2SK = auditTargetPrefix+e.Target, e.ID
	}
	if s.keep > 0 {
		it.ExpiresAt = expiry(e.Time.Add(s.keep))
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal audit entry %s: %w", e.ID, err)
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: av, ConditionExpression: cond.Condition(),
		ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	})
	switch {
	case isConditionFailed(err):
		return fmt.Errorf("put audit entry %s: %w", e.ID, audit.ErrDuplicateID)
	case err != nil:
		return fmt.Errorf("put audit entry %s: %w", e.ID, err)
	}
	return nil
}

// List returns at most limit entries that f selects, newest first, before cursor (an
// audit.Cursor; empty starts at the newest), and the cursor of the next page ("" when there is
// none). A page may hold fewer than limit entries and still have a next page: one page reads a
// bounded number of days. A cursor this store did not issue is fault.ErrBadCursor.
func (s *AuditStore) List(ctx context.Context, f audit.Filter, cursor string, limit int) ([]audit.Entry, string, error) {
	if limit <= 0 {
		return nil, "", errors.New("list audit entries: limit must be positive")
	}
	var before string
	if cursor != "" {
		id, ok := audit.ParseCursor(cursor)
		if !ok {
			return nil, "", fault.ErrBadCursor
		}
		before = id
	}
	var after string // inclusive lower bound of ids
	if !f.Since.IsZero() {
		after = audit.IDAt(f.Since)
	}
	var filter expression.ConditionBuilder
	hasFilter := false
	and := func(c expression.ConditionBuilder) {
		if hasFilter {
			filter = filter.And(c)
		} else {
			filter, hasFilter = c, true
		}
	}
	if f.Action != "" {
		and(expression.Name("action").Equal(expression.Value(f.Action)))
	}
	switch {
	case f.Target != "":
		if f.Actor != "" {
			and(expression.Name("actor").Equal(expression.Value(f.Actor)))
		}
		q := auditQuery{index: resources.IndexAuditByTarget, pkName: resources.AttrGSI2PK, skName: resources.AttrGSI2SK, pk: auditTargetPrefix + f.Target}
		return s.listPartition(ctx, q, filter, hasFilter, after, before, limit)
	case f.Actor != "":
		q := auditQuery{index: resources.IndexAuditByActor, pkName: resources.AttrGSI1PK, skName: resources.AttrGSI1SK, pk: auditActorPrefix + f.Actor}
		return s.listPartition(ctx, q, filter, hasFilter, after, before, limit)
	}
	return s.listDays(ctx, filter, hasFilter, after, before, limit)
}

// auditQuery is one partition to read newest first: of the table (index "") or of an index.
type auditQuery struct {
	index, pkName, skName, pk string
}

// listPartition reads one partition newest first, ids in [after, before), until limit entries
// or the partition's end.
func (s *AuditStore) listPartition(ctx context.Context, q auditQuery, filter expression.ConditionBuilder, hasFilter bool, after, before string, limit int) ([]audit.Entry, string, error) {
	out, done, err := s.readPartition(ctx, q, filter, hasFilter, after, before, limit)
	if err != nil || done {
		return out, "", err
	}
	return out, audit.Cursor(out[len(out)-1].ID), nil
}

// listDays walks the day partitions from before's day (today without one) back to after's day
// (or the retention horizon).
func (s *AuditStore) listDays(ctx context.Context, filter expression.ConditionBuilder, hasFilter bool, after, before string, limit int) ([]audit.Entry, string, error) {
	now := s.now()
	day := now
	if before != "" {
		day, _ = audit.IDTime(before)
		if before == audit.IDAt(day) {
			day = day.Add(-time.Nanosecond) // a bare time: the entries before it start the day before
		}
	}
	horizon := audit.Epoch
	if s.keep > 0 && now.Add(-s.keep).After(horizon) {
		horizon = now.Add(-s.keep)
	}
	if t, ok := audit.IDTime(after); ok && t.After(horizon) {
		horizon = t
	}
	horizon = horizon.Truncate(24 * time.Hour)
	var out []audit.Entry
	for n := 0; !day.Before(horizon); n++ {
		if n == s.maxDayQueries {
			// Continue before this day's start on the next page.
			return out, audit.Cursor(audit.IDAt(day.Add(24 * time.Hour).Truncate(24 * time.Hour))), nil
		}
		q := auditQuery{pkName: resources.AttrPK, skName: resources.AttrSK, pk: auditDayPK(day)}
		page, done, err := s.readPartition(ctx, q, filter, hasFilter, after, before, limit-len(out))
		if err != nil {
			return nil, "", err
		}
		out = append(out, page...)
		if !done {
			return out, audit.Cursor(out[len(out)-1].ID), nil
		}
		before = ""
		day = day.Truncate(24 * time.Hour).Add(-time.Nanosecond)
	}
	return out, "", nil
}

// readPartition reads up to limit entries of one partition newest first with ids in [after,
// before); done is set when the partition holds no more.
func (s *AuditStore) readPartition(ctx context.Context, q auditQuery, filter expression.ConditionBuilder, hasFilter bool, after, before string, limit int) ([]audit.Entry, bool, error) {
	kc := expression.Key(q.pkName).Equal(expression.Value(q.pk))
	switch {
	case after != "" && before != "":
		kc = kc.And(expression.Key(q.skName).Between(expression.Value(after), expression.Value(before)))
	case before != "":
		kc = kc.And(expression.Key(q.skName).LessThan(expression.Value(before)))
	case after != "":
		kc = kc.And(expression.Key(q.skName).GreaterThanEqual(expression.Value(after)))
	}
	b := expression.NewBuilder().WithKeyCondition(kc)
	if hasFilter {
		b = b.WithFilter(filter)
	}
	expr, err := b.Build()
	if err != nil {
		return nil, false, fmt.Errorf("build audit query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ScanIndexForward: aws.Bool(false),
	}
	if q.index != "" {
		in.IndexName = aws.String(q.index)
	}
	var out []audit.Entry
	for {
		// Without a filter every item read is returned, so read no more than needed (+1 for the
		// BETWEEN's inclusive upper end); with one, read in pages of 100.
		n := limit - len(out) + 1
		if hasFilter {
			n = max(n, 100)
		}
		in.Limit = aws.Int32(int32(min(n, 1000)))
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("query audit entries: %w", err)
		}
		var items []auditItem
		if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
			return nil, false, fmt.Errorf("unmarshal audit entries: %w", err)
		}
		now := s.now().Unix()
		for _, it := range items {
			if it.ID == before {
				continue // BETWEEN includes the cursor's own entry
			}
			if it.ExpiresAt > 0 && it.ExpiresAt <= now {
				continue // past NET_AUTO_AUDIT_MAX_DAYS, waiting for TTL
			}
			out = append(out, it.entry())
			if len(out) == limit {
				// Done only when nothing was left unread after this item.
				return out, false, nil
			}
		}
		if res.LastEvaluatedKey == nil {
			return out, true, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

func (it auditItem) entry() audit.Entry {
	return audit.Entry{
		ID: it.ID, Time: it.At, Actor: it.Actor, Role: it.Role, Action: it.Action, Target: it.Target, Outcome: it.Outcome,
		Reason: it.Reason, RequestID: it.RequestID, Source: it.Source, Detail: it.Detail,
	}
}
