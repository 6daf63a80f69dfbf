package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
)

// TestBulkDevicesPageReadsOnlyWhatItReturns starts a 500-device job (10 batches) through the API
// and counts the items the job store reads from DynamoDB for pages of its devices: a viewer's
// `?limit=1` costs the job and two batches, not the whole job, however often it is repeated.
func TestBulkDevicesPageReadsOnlyWhatItReturns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rows []map[string]any
	var ids []string
	for i := range 500 {
		id := fmt.Sprintf("p%03d", i)
		rows = append(rows, deviceJSON(id, nil))
		ids = append(ids, id)
	}
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{"command": "show clock", "device_ids": ids}))
	var acc bulk.Accepted
	r.JSON(t, &acc)
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	require.Equal(t, 10, acc.Batches, "bulk: batches")

	tests := []struct {
		name      string
		query     string
		wantItems int
		wantNext  string
		// the job (META and its set of done batches; the handler and the store may each read it)
		// + the page's batches and one more, two items each (states and device ids)
		maxReads int64
	}{
		{"limit 1", "limit=1", 50, "1", 2*2 + 2*2},
		{"limit 100", "limit=100", 100, "2", 2*2 + 2*3},
		{"from the middle", "limit=1&cursor=5", 50, "6", 2*2 + 2*2},
		{"last page", "limit=500&cursor=9", 50, "", 2*2 + 2*1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.jobReads.Items()
			r := e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID+"/devices?"+tt.query, "", nil)
			reads := e.jobReads.Items() - before
			require.Equal(t, http.StatusOK, r.Status, "devices page: %s", truncate(r.Body))
			var page struct {
				Items []bulk.DeviceState `json:"items"`
				Next  string             `json:"next"`
			}
			r.JSON(t, &page)
			assert.Len(t, page.Items, tt.wantItems, "devices")
			assert.Equal(t, tt.wantNext, page.Next, "next")
			assert.LessOrEqual(t, reads, tt.maxReads, "items read from the jobs table for %d devices", len(page.Items))
		})
	}
}
