package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
)

const (
	devicePrefix = "DEV#"
	deviceSK     = "DEV"
	// maxScanCalls bounds the work one filtered page may do before it returns what it found.
	maxScanCalls = 50
)

// DeviceStore keeps the inventory in the devices table, one item per device.
type DeviceStore struct {
	db    API
	table string
}

// NewDeviceStore returns a store over the named devices table.
func NewDeviceStore(db API, table string) (*DeviceStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new device store: client and table name are required")
	}
	return &DeviceStore{db: db, table: table}, nil
}

type deviceItem struct {
	PK                string            `dynamodbav:"pk"`
	SK                string            `dynamodbav:"sk"`
	ID                string            `dynamodbav:"id"`
	Name              string            `dynamodbav:"name"`
	Host              string            `dynamodbav:"host"`
	Port              int               `dynamodbav:"port"`
	Platform          string            `dynamodbav:"platform"`
	Username          string            `dynamodbav:"username"`
	AuthMethod        string            `dynamodbav:"auth_method"`
	Tags              map[string]string `dynamodbav:"tags"`
	Site              string            `dynamodbav:"site"`
	HostKey           string            `dynamodbav:"host_key,omitempty"`
	HostKeyLearnedAt  *time.Time        `dynamodbav:"host_key_learned_at,omitempty"`
	PendingHostKey    *pendingKeyItem   `dynamodbav:"pending_host_key,omitempty"`
	TrustOnFirstUse   bool              `dynamodbav:"tofu"`
	LegacyAlgorithms  bool              `dynamodbav:"legacy_algorithms"`
	CredentialProfile string            `dynamodbav:"credential_profile,omitempty"`
	JumpHostIDs       []string          `dynamodbav:"jump_host_ids,omitempty"`
	HasEnableSecret   bool              `dynamodbav:"has_enable_secret,omitempty"`
	HasCredential     bool              `dynamodbav:"has_credential"`
	Version           int64             `dynamodbav:"version"`
	CreatedAt         time.Time         `dynamodbav:"created_at"`
	UpdatedAt         time.Time         `dynamodbav:"updated_at"`
}

func deviceKey(id string) map[string]types.AttributeValue {
	return itemKey(devicePrefix+id, deviceSK)
}

func toItem(d device.Device) deviceItem {
	tags := d.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return deviceItem{
		PK: devicePrefix + d.ID, SK: deviceSK, ID: d.ID, Name: d.Name, Host: d.Host, Port: d.Port,
		Platform: d.Platform, Username: d.Username, AuthMethod: string(d.AuthMethod), Tags: tags,
		Site: d.Site, HostKey: d.HostKey, TrustOnFirstUse: d.TrustOnFirstUse, LegacyAlgorithms: d.LegacyAlgorithms,
		CredentialProfile: d.CredentialProfile, HasCredential: d.HasCredential, Version: d.Version,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, JumpHostIDs: d.JumpHostIDs, HasEnableSecret: d.HasEnableSecret,
		HostKeyLearnedAt: d.HostKeyLearnedAt, PendingHostKey: pendingToItem(d.PendingHostKey),
	}
}

func (it deviceItem) device() device.Device {
	tags := it.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return device.Device{
		ID: it.ID, Name: it.Name, Host: it.Host, Port: it.Port, Platform: it.Platform, Username: it.Username,
		AuthMethod: device.AuthMethod(it.AuthMethod), Tags: tags, Site: it.Site, HostKey: it.HostKey,
		TrustOnFirstUse: it.TrustOnFirstUse, LegacyAlgorithms: it.LegacyAlgorithms,
		CredentialProfile: it.CredentialProfile, HasCredential: it.HasCredential, Version: it.Version,
		CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt, JumpHostIDs: it.JumpHostIDs, HasEnableSecret: it.HasEnableSecret,
		HostKeyLearnedAt: it.HostKeyLearnedAt, PendingHostKey: it.PendingHostKey.pending(),
	}
}

// Create stores a new device; ErrExists when the id is taken.
func (s *DeviceStore) Create(ctx context.Context, d device.Device) error {
	item, err := attributevalue.MarshalMap(toItem(d))
	if err != nil {
		return fmt.Errorf("marshal device %s: %w", d.ID, err)
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	if isConditionFailed(err) {
		return device.ErrExists
	}
	if err != nil {
		return fmt.Errorf("put device %s: %w", d.ID, err)
	}
	return nil
}

// CreateBatch stores new devices in one transaction, all or none (device.BatchCreator); it fails
// with device.ErrExists when any of the ids is taken.
func (s *DeviceStore) CreateBatch(ctx context.Context, ds []device.Device) error {
	if len(ds) == 0 {
		return nil
	}
	if len(ds) > maxTransactItems {
		return fmt.Errorf("create devices: %d in one batch, at most %d", len(ds), maxTransactItems)
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	items := make([]types.TransactWriteItem, len(ds))
	for i, d := range ds {
		item, err := attributevalue.MarshalMap(toItem(d))
		if err != nil {
			return fmt.Errorf("marshal device %s: %w", d.ID, err)
		}
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		}}
	}
	err = transact(ctx, s.db, items...)
	if i := failedConditionIndex(err); i >= 0 && i < len(ds) {
		return fmt.Errorf("create device %s: %w", ds[i].ID, device.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create %d devices: %w", len(ds), err)
	}
	return nil
}

// UpdateBatch replaces devices in one transaction, all or none, each only if its stored version
// is prev[i] (device.BatchUpdater); device.ErrConflict names the first device that changed or
// is gone.
func (s *DeviceStore) UpdateBatch(ctx context.Context, ds []device.Device, prev []int64) error {
	if len(ds) == 0 {
		return nil
	}
	if len(ds) > maxTransactItems || len(prev) != len(ds) {
		return fmt.Errorf("update devices: %d in one batch with %d versions, at most %d", len(ds), len(prev), maxTransactItems)
	}
	items := make([]types.TransactWriteItem, len(ds))
	for i, d := range ds {
		item, err := attributevalue.MarshalMap(toItem(d))
		if err != nil {
			return fmt.Errorf("marshal device %s: %w", d.ID, err)
		}
		cond, err := buildCondition(itemExists().And(expression.Name("version").Equal(expression.Value(prev[i]))))
		if err != nil {
			return err
		}
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
		}}
	}
	err := transact(ctx, s.db, items...)
	if i := failedConditionIndex(err); i >= 0 && i < len(ds) {
		return fmt.Errorf("update device %s: %w", ds[i].ID, device.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update %d devices: %w", len(ds), err)
	}
	return nil
}

// Get returns one device; ErrNotFound when there is none.
func (s *DeviceStore) Get(ctx context.Context, id string) (device.Device, error) {
	it, found, err := getItem[deviceItem](ctx, s.db, s.table, deviceKey(id), "device "+id)
	if err != nil {
		return device.Device{}, err
	}
	if !found {
		return device.Device{}, device.ErrNotFound
	}
	return it.device(), nil
}

// Update replaces a device if its stored version is prevVersion; ErrConflict otherwise.
func (s *DeviceStore) Update(ctx context.Context, d device.Device, prevVersion int64) error {
	item, err := attributevalue.MarshalMap(toItem(d))
	if err != nil {
		return fmt.Errorf("marshal device %s: %w", d.ID, err)
	}
	return versioned(putIfVersion(ctx, s.db, s.table, item, prevVersion), device.ErrNotFound, device.ErrConflict, "update device "+d.ID)
}

// Delete removes a device if its stored version is version.
func (s *DeviceStore) Delete(ctx context.Context, id string, version int64) error {
	return versioned(deleteIfVersion(ctx, s.db, s.table, deviceKey(id), version), device.ErrNotFound, device.ErrConflict, "delete device "+id)
}

// List scans the devices matching f, at most p.Limit of them, resuming at p.Cursor.
func (s *DeviceStore) List(ctx context.Context, f device.Filter, p device.Page) ([]device.Device, string, error) {
	start, ok := decodeCursor(p.Cursor, resources.AttrPK, resources.AttrSK)
	if !ok || (start != nil && !isDeviceKey(start)) {
		return nil, "", fault.ErrBadCursor
	}
	cond := expression.Name(resources.AttrSK).Equal(expression.Value(deviceSK))
	if f.Platform != "" {
		cond = cond.And(expression.Name("platform").Equal(expression.Value(f.Platform)))
	}
	if f.Site != "" {
		cond = cond.And(expression.Name("site").Equal(expression.Value(f.Site)))
	}
	if f.Sites != nil {
		cond = cond.And(siteIn(f.Sites))
	}
	if f.TagKey != "" {
		tag := expression.Name("tags").AppendName(expression.NameNoDotSplit(f.TagKey))
		if f.TagValue != "" {
			cond = cond.And(tag.Equal(expression.Value(f.TagValue)))
		} else {
			cond = cond.And(expression.AttributeExists(tag))
		}
	}
	expr, err := expression.NewBuilder().WithFilter(cond).Build()
	if err != nil {
		return nil, "", fmt.Errorf("build filter: %w", err)
	}
	var out []device.Device
	for calls := 0; calls < maxScanCalls; calls++ {
		res, err := s.db.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(s.table), ExclusiveStartKey: start, Limit: aws.Int32(int32(p.Limit - len(out))),
			FilterExpression: expr.Filter(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		if err != nil {
			return nil, "", fmt.Errorf("scan devices: %w", err)
		}
		var items []deviceItem
		if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
			return nil, "", fmt.Errorf("unmarshal devices: %w", err)
		}
		for _, it := range items {
			out = append(out, it.device())
		}
		start = res.LastEvaluatedKey
		if len(start) == 0 || len(out) >= p.Limit {
			break
		}
	}
	next, err := encodeCursor(start)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// siteIn is the condition "the device's site is one of sites"; no sites matches nothing.
func siteIn(sites []string) expression.ConditionBuilder {
	site := expression.Name("site")
	if len(sites) == 0 {
		return expression.AttributeNotExists(expression.Name(resources.AttrPK))
	}
	c := site.Equal(expression.Value(sites[0]))
	if len(sites) == 1 {
		return c
	}
	rest := make([]expression.OperandBuilder, 0, len(sites)-1)
	for _, s := range sites[1:] {
		rest = append(rest, expression.Value(s))
	}
	return site.In(expression.Value(sites[0]), rest...)
}

// isDeviceKey reports whether key is a whole device item key (a cursor this store issued holds
// one); anything else would make DynamoDB refuse the scan with a validation error.
func isDeviceKey(key map[string]types.AttributeValue) bool {
	if len(key) != 2 {
		return false
	}
	pk, ok1 := key[resources.AttrPK].(*types.AttributeValueMemberS)
	sk, ok2 := key[resources.AttrSK].(*types.AttributeValueMemberS)
	return ok1 && ok2 && len(pk.Value) > len(devicePrefix) && strings.HasPrefix(pk.Value, devicePrefix) && sk.Value == deviceSK
}

// Existing returns which of ids are taken, with BatchGetItem.
func (s *DeviceStore) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	found := map[string]bool{}
	proj, err := expression.NewBuilder().WithProjection(expression.NamesList(expression.Name("id"))).Build()
	if err != nil {
		return nil, fmt.Errorf("build projection: %w", err)
	}
	err = s.getDevices(ctx, ids, &proj, true, func(item map[string]types.AttributeValue) error {
		var it struct {
			ID string `dynamodbav:"id"`
		}
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return fmt.Errorf("unmarshal device id: %w", err)
		}
		found[it.ID] = true
		return nil
	})
	return found, err
}

// GetMany returns the devices among ids that exist, with strongly consistent BatchGetItem: what
// a read before a write needs.
func (s *DeviceStore) GetMany(ctx context.Context, ids []string) (map[string]device.Device, error) {
	out := make(map[string]device.Device, len(ids))
	return out, s.getDevices(ctx, ids, nil, true, collectDevices(out))
}

// Lookup returns the devices among ids that exist, read eventually consistent (half the read
// units of GetMany), so a change made within about a second may not show yet; the ids not
// found are read again strongly consistent, so a device created a moment ago is found. It
// implements bulk.Inventory.
func (s *DeviceStore) Lookup(ctx context.Context, ids []string) (map[string]device.Device, error) {
	out := make(map[string]device.Device, len(ids))
	return out, s.getDevicesSettled(ctx, ids, nil, collectDevices(out))
}

// collectDevices is a getDevices callback that adds each device read to out.
func collectDevices(out map[string]device.Device) func(map[string]types.AttributeValue) error {
	return func(item map[string]types.AttributeValue) error {
		var it deviceItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return fmt.Errorf("unmarshal device: %w", err)
		}
		out[it.ID] = it.device()
		return nil
	}
}

// getDevicesSettled is getDevices read eventually consistent, then strongly consistent for the
// ids that read found nothing for: a device is missed only when it is really gone. A projection
// must include the item's id.
func (s *DeviceStore) getDevicesSettled(ctx context.Context, ids []string, proj *expression.Expression, each func(map[string]types.AttributeValue) error) error {
	found := make(map[string]bool, len(ids))
	err := s.getDevices(ctx, ids, proj, false, func(item map[string]types.AttributeValue) error {
		if id, ok := item["id"].(*types.AttributeValueMemberS); ok {
			found[id.Value] = true
		}
		return each(item)
	})
	if err != nil {
		return err
	}
	var missed []string
	for _, id := range ids {
		if !found[id] {
			missed = append(missed, id)
		}
	}
	return s.getDevices(ctx, missed, proj, true, each)
}

// batchGetParallel bounds the BatchGetItem calls of one getDevices in flight at once.
const batchGetParallel = 32

// getDevices reads the devices of ids (projected when proj is set), strongly consistent or
// not, maxBatchGetKeys a call, several calls at once; each is called for every item, one at a
// time.
func (s *DeviceStore) getDevices(ctx context.Context, ids []string, proj *expression.Expression, consistent bool, each func(map[string]types.AttributeValue) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, batchGetParallel)
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for startIdx := 0; startIdx < len(ids); startIdx += maxBatchGetKeys {
		chunk := ids[startIdx:min(startIdx+maxBatchGetKeys, len(ids))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			keys := make([]map[string]types.AttributeValue, 0, len(chunk))
			seen := map[string]bool{}
			for _, id := range chunk {
				if !seen[id] {
					seen[id] = true
					keys = append(keys, deviceKey(id))
				}
			}
			items, err := batchGetWith(ctx, s.db, s.table, keys, proj, consistent)
			if err != nil {
				fail(fmt.Errorf("get devices: %w", err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, item := range items {
				if err := each(item); err != nil && firstErr == nil {
					firstErr = err
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
