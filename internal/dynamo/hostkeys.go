package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/device"
)

// pendingKeyItem is a device's pending host key, a map attribute of its item.
type pendingKeyItem struct {
	Key         string    `dynamodbav:"key"`
	Fingerprint string    `dynamodbav:"fingerprint"`
	SeenAt      time.Time `dynamodbav:"seen_at"`
}

func pendingToItem(p *device.PendingHostKey) *pendingKeyItem {
	if p == nil {
		return nil
	}
	return &pendingKeyItem{Key: p.Key, Fingerprint: p.Fingerprint, SeenAt: p.SeenAt}
}

func (it *pendingKeyItem) pending() *device.PendingHostKey {
	if it == nil {
		return nil
	}
	return &device.PendingHostKey{Key: it.Key, Fingerprint: it.Fingerprint, SeenAt: it.SeenAt}
}

// PinHostKey sets the device's host key when it has none, with one conditional write: of
// concurrent first connections exactly one key wins (won), and the others get it back to compare.
func (s *DeviceStore) PinHostKey(ctx context.Context, id, key string, at time.Time) (string, bool, error) {
	when, err := attributevalue.Marshal(at.UTC())
	if err != nil {
		return "", false, fmt.Errorf("marshal time: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: deviceKey(id),
		UpdateExpression:    aws.String("SET #hk = :key, #la = :at, #ua = :at ADD #v :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(#hk) OR #hk = :empty)"),
		ExpressionAttributeNames: map[string]string{
			"#hk": "host_key", "#la": "host_key_learned_at", "#ua": "updated_at", "#v": "version",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":key": sv(key), ":at": when, ":one": nv(1), ":empty": sv(""),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailedItem(err); ok {
		if len(old) == 0 {
			return "", false, device.ErrNotFound
		}
		var it deviceItem
		if err := attributevalue.UnmarshalMap(old, &it); err != nil {
			return "", false, fmt.Errorf("unmarshal device %s: %w", id, err)
		}
		return it.HostKey, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("pin host key of device %s: %w", id, err)
	}
	return key, true, nil
}

// SetPendingHostKey records the key a device offered instead of its pinned one.
func (s *DeviceStore) SetPendingHostKey(ctx context.Context, id string, p device.PendingHostKey) error {
	pending, err := attributevalue.Marshal(pendingToItem(&p))
	if err != nil {
		return fmt.Errorf("marshal pending host key: %w", err)
	}
	when, err := attributevalue.Marshal(p.SeenAt.UTC())
	if err != nil {
		return fmt.Errorf("marshal time: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: deviceKey(id),
		UpdateExpression:          aws.String("SET #pk = :p, #ua = :now ADD #v :one"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": "pending_host_key", "#ua": "updated_at", "#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": pending, ":now": when, ":one": nv(1)},
	})
	if isConditionFailed(err) {
		return device.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set pending host key of device %s: %w", id, err)
	}
	return nil
}

// AcceptHostKey pins the pending key p and clears it, on the condition that the stored pending
// key still has p's fingerprint.
func (s *DeviceStore) AcceptHostKey(ctx context.Context, id string, p device.PendingHostKey, at time.Time) (device.Device, error) {
	when, err := attributevalue.Marshal(at.UTC())
	if err != nil {
		return device.Device{}, fmt.Errorf("marshal time: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: deviceKey(id),
		UpdateExpression:    aws.String("SET #hk = :key, #la = :at, #ua = :at REMOVE #pk ADD #v :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND #pk.#fp = :fp"),
		ExpressionAttributeNames: map[string]string{
			"#hk": "host_key", "#la": "host_key_learned_at", "#ua": "updated_at", "#v": "version",
			"#pk": "pending_host_key", "#fp": "fingerprint",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":key": sv(p.Key), ":at": when, ":one": nv(1), ":fp": sv(p.Fingerprint),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailedItem(err); ok {
		if len(old) == 0 {
			return device.Device{}, device.ErrNotFound
		}
		return device.Device{}, device.ErrHostKeyNotPending
	}
	if err != nil {
		return device.Device{}, fmt.Errorf("accept host key of device %s: %w", id, err)
	}
	var it deviceItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return device.Device{}, fmt.Errorf("unmarshal device %s: %w", id, err)
	}
	return it.device(), nil
}
