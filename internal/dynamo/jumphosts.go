package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
)

// jumpHostPK is the one partition of the devices table that holds every jump host: they are few,
// and one Query lists them all. Device listings read only items whose sort key is deviceSK.
const jumpHostPK = "JUMP"

// JumpHostStore keeps jump host metadata in the devices table (jumphost.Store). Credentials live
// in the secret store, never here.
type JumpHostStore struct {
	db    API
	table string
	recs  records[jumphost.JumpHost, jumpHostItem]
}

// NewJumpHostStore returns a store over the named devices table.
func NewJumpHostStore(db API, table string) (*JumpHostStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new jump host store: client and table name are required")
	}
	return &JumpHostStore{db: db, table: table, recs: records[jumphost.JumpHost, jumpHostItem]{
		db: db, table: table, pk: jumpHostPK, noun: "jump host", toItem: jumpHostToItem, fromItem: jumpHostItem.jumpHost,
		id: func(r jumphost.JumpHost) string { return r.ID }, exists: jumphost.ErrExists, notFound: jumphost.ErrNotFound, conflict: jumphost.ErrConflict,
	}}, nil
}

type jumpHostItem struct {
	PK               string          `dynamodbav:"pk"`
	SK               string          `dynamodbav:"sk"`
	ID               string          `dynamodbav:"id"`
	Host             string          `dynamodbav:"host"`
	Port             int             `dynamodbav:"port"`
	Username         string          `dynamodbav:"username"`
	AuthMethod       string          `dynamodbav:"auth_method"`
	HostKey          string          `dynamodbav:"host_key,omitempty"`
	HostKeyLearnedAt *time.Time      `dynamodbav:"host_key_learned_at,omitempty"`
	PendingHostKey   *pendingKeyItem `dynamodbav:"pending_host_key,omitempty"`
	TrustOnFirstUse  bool            `dynamodbav:"tofu"`
	HasCredential    bool            `dynamodbav:"has_credential"`
	Version          int64           `dynamodbav:"version"`
	CreatedAt        time.Time       `dynamodbav:"created_at"`
	UpdatedAt        time.Time       `dynamodbav:"updated_at"`
}

func jumpHostKey(id string) map[string]types.AttributeValue { return itemKey(jumpHostPK, id) }

func jumpHostToItem(h jumphost.JumpHost) jumpHostItem {
	return jumpHostItem{
		PK: jumpHostPK, SK: h.ID, ID: h.ID, Host: h.Host, Port: h.Port, Username: h.Username, AuthMethod: string(h.AuthMethod),
		HostKey: h.HostKey, HostKeyLearnedAt: h.HostKeyLearnedAt, PendingHostKey: pendingToItem(h.PendingHostKey),
		TrustOnFirstUse: h.TrustOnFirstUse, HasCredential: h.HasCredential, Version: h.Version, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
}

func (it jumpHostItem) jumpHost() jumphost.JumpHost {
	return jumphost.JumpHost{
		ID: it.ID, Host: it.Host, Port: it.Port, Username: it.Username, AuthMethod: device.AuthMethod(it.AuthMethod),
		HostKey: it.HostKey, HostKeyLearnedAt: it.HostKeyLearnedAt, PendingHostKey: it.PendingHostKey.pending(),
		TrustOnFirstUse: it.TrustOnFirstUse, HasCredential: it.HasCredential, Version: it.Version, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}
}

// Create stores a new jump host; jumphost.ErrExists when the id is taken.
func (s *JumpHostStore) Create(ctx context.Context, h jumphost.JumpHost) error {
	return s.recs.create(ctx, h)
}

// Get returns one jump host; jumphost.ErrNotFound when there is none.
func (s *JumpHostStore) Get(ctx context.Context, id string) (jumphost.JumpHost, error) {
	return s.recs.get(ctx, id)
}

// Update replaces a jump host if its stored version is prevVersion.
func (s *JumpHostStore) Update(ctx context.Context, h jumphost.JumpHost, prevVersion int64) error {
	return s.recs.update(ctx, h, prevVersion)
}

// Delete removes a jump host if its stored version is version.
func (s *JumpHostStore) Delete(ctx context.Context, id string, version int64) error {
	return s.recs.delete(ctx, id, version)
}

// List returns every jump host by id: one Query of the jump hosts' partition.
func (s *JumpHostStore) List(ctx context.Context) ([]jumphost.JumpHost, error) {
	return s.recs.list(ctx)
}

// UsedBy counts the devices whose chain names id and returns up to limit of their ids (see
// scanDeviceIDs).
func (s *JumpHostStore) UsedBy(ctx context.Context, id string, limit int) (int, []string, error) {
	n, ids, err := scanDeviceIDs(ctx, s.db, s.table, expression.Contains(expression.Name("jump_host_ids"), id), limit)
	if err != nil {
		return 0, nil, fmt.Errorf("scan devices of jump host %s: %w", id, err)
	}
	return n, ids, nil
}

// PinHostKey sets the jump host's key when it has none (see pinHostKey).
func (s *JumpHostStore) PinHostKey(ctx context.Context, id, key string, at time.Time) (string, bool, error) {
	pinned, won, err := pinHostKey(ctx, s.db, s.table, jumpHostKey(id), key, at, "jump host "+id)
	return pinned, won, hostKeyErr(err, jumphost.ErrNotFound, nil)
}

// SetPendingHostKey records the key a jump host offered instead of its pinned one.
func (s *JumpHostStore) SetPendingHostKey(ctx context.Context, id string, p device.PendingHostKey) error {
	return hostKeyErr(setPendingHostKey(ctx, s.db, s.table, jumpHostKey(id), p, "jump host "+id), jumphost.ErrNotFound, nil)
}

// AcceptHostKey pins the pending key p and clears it, on the condition that the stored pending
// key still has p's fingerprint.
func (s *JumpHostStore) AcceptHostKey(ctx context.Context, id string, p device.PendingHostKey, at time.Time) (jumphost.JumpHost, error) {
	item, err := acceptHostKey(ctx, s.db, s.table, jumpHostKey(id), p, at, "jump host "+id)
	if err != nil {
		return jumphost.JumpHost{}, hostKeyErr(err, jumphost.ErrNotFound, jumphost.ErrHostKeyNotPending)
	}
	var it jumpHostItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return jumphost.JumpHost{}, fmt.Errorf("unmarshal jump host %s: %w", id, err)
	}
	return it.jumpHost(), nil
}
