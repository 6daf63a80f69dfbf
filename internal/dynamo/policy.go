package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/internal/policy"
)

// policyKey is the command policy's one item in the devices table: the policy is configuration
// of the inventory, read by the functions that already read devices (the executor may only read
// it), and the device scan skips it because its key is not a device's.
const policyKey = "POLICY"

// PolicyStore keeps the command policy as one item holding the ordered rule list and a version
// for optimistic concurrency. It implements policy.Reader, bulk.PolicySource and api.Policies.
type PolicyStore struct {
	db    API
	table string
}

// NewPolicyStore returns a store over the named devices table.
func NewPolicyStore(db API, table string) (*PolicyStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new policy store: client and table name are required")
	}
	return &PolicyStore{db: db, table: table}, nil
}

type policyItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
	// Rules is the rule list as JSON: one string keeps the item small and its order exact.
	Rules     string    `dynamodbav:"rules"`
	Version   int64     `dynamodbav:"version"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
	UpdatedBy string    `dynamodbav:"updated_by"`
}

// GetPolicy returns the stored policy, read strongly consistent so a change applies to the next
// check; policy.ErrNotStored when none was stored.
func (s *PolicyStore) GetPolicy(ctx context.Context) (policy.Policy, error) {
	it, found, err := getItem[policyItem](ctx, s.db, s.table, itemKey(policyKey, policyKey), "policy")
	if err != nil {
		return policy.Policy{}, err
	}
	if !found {
		return policy.Policy{}, policy.ErrNotStored
	}
	var rules []policy.Rule
	if err := json.Unmarshal([]byte(it.Rules), &rules); err != nil {
		return policy.Policy{}, fmt.Errorf("decode policy rules: %w", err)
	}
	return policy.Policy{Rules: rules, Version: it.Version, UpdatedAt: it.UpdatedAt, UpdatedBy: it.UpdatedBy}, nil
}

// PutPolicy stores p's rules as version expected+1, on the condition that the stored version is
// expected (0: nothing stored yet); policy.ErrConflict otherwise.
func (s *PolicyStore) PutPolicy(ctx context.Context, p policy.Policy, expected int64) (policy.Policy, error) {
	rules := p.Rules
	if rules == nil {
		rules = []policy.Rule{}
	}
	js, err := json.Marshal(rules)
	if err != nil {
		return policy.Policy{}, fmt.Errorf("encode policy rules: %w", err)
	}
	p.Version = expected + 1
	item, err := attributevalue.MarshalMap(policyItem{
		PK: policyKey, SK: policyKey, Rules: string(js), Version: p.Version, UpdatedAt: p.UpdatedAt, UpdatedBy: p.UpdatedBy,
	})
	if err != nil {
		return policy.Policy{}, fmt.Errorf("marshal policy: %w", err)
	}
	cond := itemAbsent()
	if expected > 0 {
		cond = expression.Name("version").Equal(expression.Value(expected))
	}
	expr, err := buildCondition(cond)
	if err != nil {
		return policy.Policy{}, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if isConditionFailed(err) {
		return policy.Policy{}, policy.ErrConflict
	}
	if err != nil {
		return policy.Policy{}, fmt.Errorf("put policy version %d: %w", p.Version, err)
	}
	p.Rules = rules
	return p, nil
}
