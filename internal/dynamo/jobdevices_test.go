package dynamo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// TestJobStoreDevicesReadsOnlyThePage pages through a 20-batch job and counts the items each
// page reads: the job (its META and its set of done batches) and the batches the page returns
// (two items each: their states and their device ids), plus at most one to find the next page,
// whatever is left of the job.
func TestJobStoreDevicesReadsOnlyThePage(t *testing.T) {
	ctx := context.Background()
	db, name := newTable(t, resources.JobsTable)
	client, ok := db.(*dynamodb.Client)
	require.True(t, ok, "newTable returns the real client")
	counter := stacktest.NewReadCounter(client)
	s, err := NewJobStore(counter, name)
	require.NoError(t, err)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%04d", i)
	}
	j := createJob(t, s, bulk.Split(ids, 50), time.Now().UTC())

	tests := []struct {
		name      string
		cursor    string
		limit     int
		wantFirst string
		wantCount int
		wantNext  string
		maxReads  int64 // the job (META and its done set), the page's batches and one look-ahead, two items a batch
	}{
		{"limit 1 reads one batch and the next", "", 1, "d0000", 50, "1", 2 + 2*2},
		{"limit 120 reads three batches", "", 120, "d0000", 100, "2", 2 + 2*3},
		{"limit 500 reads eleven batches", "", 500, "d0000", 500, "10", 2 + 2*11},
		{"from the middle", "10", 100, "d0500", 100, "12", 2 + 2*3},
		{"last page", "18", 500, "d0900", 100, "", 2 + 2*2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter.Items()
			got, next, err := s.Devices(ctx, j.ID, tt.cursor, tt.limit)
			require.NoError(t, err)
			reads := counter.Items() - before
			require.Len(t, got, tt.wantCount, "devices")
			assert.Equal(t, tt.wantFirst, got[0].DeviceID, "first device")
			assert.Equal(t, tt.wantNext, next, "next cursor")
			assert.LessOrEqual(t, reads, tt.maxReads, "items read for a page of %d devices", len(got))
		})
	}

	t.Run("every device once, in order, with limit 1", func(t *testing.T) {
		var seen []string
		cursor := ""
		for range len(ids) {
			page, next, err := s.Devices(ctx, j.ID, cursor, 1)
			require.NoError(t, err)
			for _, d := range page {
				seen = append(seen, d.DeviceID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		assert.Equal(t, ids, seen)
	})
}
