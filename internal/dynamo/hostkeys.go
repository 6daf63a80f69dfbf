package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/device"
)

// pendingKeyItem is a pending host key (a device's or a jump host's), a map attribute of its item.
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

// errItemGone and errNotPending are what the host key writes below report; each store maps them
// to its own domain errors.
var (
	errItemGone   = errors.New("item is gone")
	errNotPending = errors.New("no pending host key with this fingerprint")
)

// hostKeyOf is the one attribute pinHostKey reads back from an item that already had a key.
type hostKeyOf struct {
	HostKey string `dynamodbav:"host_key"`
}

// pinHostKey sets the item's host key when it has none, with one conditional write: of
// concurrent first connections exactly one key wins (won), and the others get it back to compare.
func pinHostKey(ctx context.Context, db API, table string, key map[string]types.AttributeValue, hostKey string, at time.Time, what string) (string, bool, error) {
	when, err := attributevalue.Marshal(at.UTC())
	if err != nil {
		return "", false, fmt.Errorf("marshal time: %w", err)
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key,
		UpdateExpression:    aws.String("SET #hk = :key, #la = :at, #ua = :at ADD #v :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(#hk) OR #hk = :empty)"),
		ExpressionAttributeNames: map[string]string{
			"#hk": "host_key", "#la": "host_key_learned_at", "#ua": "updated_at", "#v": "version",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":key": sv(hostKey), ":at": when, ":one": nv(1), ":empty": sv(""),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailedItem(err); ok {
		if len(old) == 0 {
			return "", false, errItemGone
		}
		var it hostKeyOf
		if err := attributevalue.UnmarshalMap(old, &it); err != nil {
			return "", false, fmt.Errorf("unmarshal %s: %w", what, err)
		}
		return it.HostKey, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("pin host key of %s: %w", what, err)
	}
	return hostKey, true, nil
}

// setPendingHostKey records the key an item's host offered instead of its pinned one.
func setPendingHostKey(ctx context.Context, db API, table string, key map[string]types.AttributeValue, p device.PendingHostKey, what string) error {
	pending, err := attributevalue.Marshal(pendingToItem(&p))
	if err != nil {
		return fmt.Errorf("marshal pending host key: %w", err)
	}
	when, err := attributevalue.Marshal(p.SeenAt.UTC())
	if err != nil {
		return fmt.Errorf("marshal time: %w", err)
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key,
		UpdateExpression:          aws.String("SET #pk = :p, #ua = :now ADD #v :one"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": "pending_host_key", "#ua": "updated_at", "#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": pending, ":now": when, ":one": nv(1)},
	})
	if isConditionFailed(err) {
		return errItemGone
	}
	if err != nil {
		return fmt.Errorf("set pending host key of %s: %w", what, err)
	}
	return nil
}

// acceptHostKey pins the pending key p and clears it, on the condition that the stored pending
// key still has p's fingerprint; it returns the item as written.
func acceptHostKey(ctx context.Context, db API, table string, key map[string]types.AttributeValue, p device.PendingHostKey, at time.Time, what string) (map[string]types.AttributeValue, error) {
	when, err := attributevalue.Marshal(at.UTC())
	if err != nil {
		return nil, fmt.Errorf("marshal time: %w", err)
	}
	out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key,
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
			return nil, errItemGone
		}
		return nil, errNotPending
	}
	if err != nil {
		return nil, fmt.Errorf("accept host key of %s: %w", what, err)
	}
	return out.Attributes, nil
}

// hostKeyErr maps the host key writes' outcomes to a store's domain errors.
func hostKeyErr(err, notFound, notPending error) error {
	switch {
	case errors.Is(err, errItemGone):
		return notFound
	case errors.Is(err, errNotPending):
		return notPending
	}
	return err
}

// PinHostKey sets the device's host key when it has none (see pinHostKey).
func (s *DeviceStore) PinHostKey(ctx context.Context, id, key string, at time.Time) (string, bool, error) {
	pinned, won, err := pinHostKey(ctx, s.db, s.table, deviceKey(id), key, at, "device "+id)
	return pinned, won, hostKeyErr(err, device.ErrNotFound, nil)
}

// SetPendingHostKey records the key a device offered instead of its pinned one.
func (s *DeviceStore) SetPendingHostKey(ctx context.Context, id string, p device.PendingHostKey) error {
	return hostKeyErr(setPendingHostKey(ctx, s.db, s.table, deviceKey(id), p, "device "+id), device.ErrNotFound, nil)
}

// AcceptHostKey pins the pending key p and clears it, on the condition that the stored pending
// key still has p's fingerprint.
func (s *DeviceStore) AcceptHostKey(ctx context.Context, id string, p device.PendingHostKey, at time.Time) (device.Device, error) {
	item, err := acceptHostKey(ctx, s.db, s.table, deviceKey(id), p, at, "device "+id)
	if err != nil {
		return device.Device{}, hostKeyErr(err, device.ErrNotFound, device.ErrHostKeyNotPending)
	}
	var it deviceItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return device.Device{}, fmt.Errorf("unmarshal device %s: %w", id, err)
	}
	return it.device(), nil
}
