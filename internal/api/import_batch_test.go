package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
)

// racyBatchStore is an in-memory store that creates batches (device.BatchCreator) and lets a
// test simulate another writer: a batch holding an id that starts with "race" finds that id
// taken, as if a concurrent create won between the import's check and its write.
type racyBatchStore struct {
	*memStore
	batches int
}

func (s *racyBatchStore) CreateBatch(ctx context.Context, ds []device.Device) error {
	s.mu.Lock()
	s.batches++
	s.mu.Unlock()
	for _, d := range ds {
		if strings.HasPrefix(d.ID, "race") {
			other := d
			other.Name = "created by someone else"
			if err := s.Create(ctx, other); err != nil && !errors.Is(err, device.ErrExists) {
				return err
			}
			return fmt.Errorf("create device %s: %w", d.ID, device.ErrExists)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if _, ok := s.devices[d.ID]; ok {
			return device.ErrExists
		}
	}
	for _, d := range ds {
		s.devices[d.ID] = d
	}
	return nil
}

func importRows(n int, raceAt int) []device.Input {
	rows := make([]device.Input, n)
	for i := range rows {
		id := fmt.Sprintf("b%03d", i)
		if i == raceAt {
			id = "race1"
		}
		rows[i] = device.Input{Device: device.Device{ID: id, Name: "n", Host: "10.0.0.1", Username: "ops"},
			Credential: device.Credential{Password: "pw-" + id}}
	}
	return rows
}

func TestImportInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name        string
		mode        device.ImportMode
		raceAt      int
		wantErr     error
		wantCreated int
	}{
		{"atomic, no race", device.ImportAtomic, -1, nil, 120},
		{"per-row, no race", device.ImportPerRow, -1, nil, 120},
		{"atomic, a row raced", device.ImportAtomic, 57, device.ErrExists, 0},
		{"per-row, a row raced", device.ImportPerRow, 57, nil, 119},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &racyBatchStore{memStore: newMemStore()}
			inv, err := device.NewInventory(store, memSecrets{store.memStore})
			require.NoError(t, err)
			res, err := inv.Import(ctx, importRows(120, tc.raceAt), tc.mode)
			if tc.wantErr == nil {
				require.NoError(t, err, "import")
			} else {
				require.ErrorIs(t, err, tc.wantErr, "import")
			}
			assert.GreaterOrEqual(t, store.batches, 120/25, "batch calls for 120 rows")
			assert.Equal(t, tc.wantCreated, res.Created, "rows created")
			ours := 0
			for id, d := range store.devices {
				if d.Name == "created by someone else" {
					continue
				}
				ours++
				c, ok := store.secret(device.SecretName(id))
				if assert.True(t, ok, "device %s stored without its credential", id) {
					assert.Equal(t, "pw-"+id, c.Password, "device %s's stored password", id)
				}
			}
			assert.Equal(t, tc.wantCreated, ours, "the import's devices the store holds")
			if tc.raceAt >= 0 {
				require.Greater(t, len(res.Rows), tc.raceAt, "import result rows")
				r := res.Rows[tc.raceAt]
				assert.Equal(t, device.RowExists, r.Status, "raced row %+v: status", r)
				if assert.NotEmpty(t, r.Errors, "raced row %+v: errors", r) {
					assert.Equal(t, "id", r.Errors[0].Field, "raced row %+v: the error's field", r)
				}
				assert.Equal(t, "created by someone else", store.devices["race1"].Name, "the other writer's device was overwritten: %+v", store.devices["race1"])
				_, ok := store.secret(device.SecretName("race1"))
				assert.False(t, ok, "the import stored a credential for the other writer's device")
			}
		})
	}
}
