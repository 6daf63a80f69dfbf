package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

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
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if store.batches < 120/25 {
				t.Errorf("%d batch calls for 120 rows, want at least %d", store.batches, 120/25)
			}
			if res.Created != tc.wantCreated {
				t.Errorf("created %d, want %d", res.Created, tc.wantCreated)
			}
			ours := 0
			for id, d := range store.devices {
				if d.Name == "created by someone else" {
					continue
				}
				ours++
				c, ok := store.secret(device.SecretName(id))
				if !ok || c.Password != "pw-"+id {
					t.Errorf("%s stored without its credential", id)
				}
			}
			if ours != tc.wantCreated {
				t.Errorf("the store holds %d of the import's devices, want %d", ours, tc.wantCreated)
			}
			if tc.raceAt >= 0 {
				r := res.Rows[tc.raceAt]
				if r.Status != device.RowExists || len(r.Errors) == 0 || r.Errors[0].Field != "id" {
					t.Errorf("raced row = %+v, want exists naming id", r)
				}
				if d := store.devices["race1"]; d.Name != "created by someone else" {
					t.Errorf("the other writer's device was overwritten: %+v", d)
				}
				if _, ok := store.secret(device.SecretName("race1")); ok {
					t.Error("the import stored a credential for the other writer's device")
				}
			}
		})
	}
}
