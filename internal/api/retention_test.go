package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// newPurger is the retention purger every test env serves: 30 days, a 1 MiB cap, daily.
func newPurger(db dynamo.API, st *stacktest.Env) (*retention.Purger, error) {
	store, err := dynamo.NewRetentionStore(db, st.Names.Tables[resources.RunsTable], st.Names.Tables[resources.JobsTable])
	if err != nil {
		return nil, err
	}
	return &retention.Purger{Store: store, Jobs: store, Budget: 20 * time.Second, Lookback: 10 * 24 * time.Hour, Logger: discardLogger(),
		Settings: retention.Settings{MaxDays: 30, MaxBytes: 1 << 20, Cron: "@daily", Schedule: "cron(0 0 * * ? *)"}}, nil
}

func TestRetentionRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// Before any purge: settings and a null report.
	res := e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/retention", "", nil)
	require.Equal(t, http.StatusOK, res.Status, "GET /v1/retention: %s", res.Body)
	var view struct {
		Settings   retention.Settings `json:"settings"`
		LastReport *retention.Report  `json:"last_report"`
	}
	res.JSON(t, &view)
	assert.Equal(t, 30, view.Settings.MaxDays, "settings before a purge: max_days")
	assert.EqualValues(t, 1<<20, view.Settings.MaxBytes, "settings before a purge: max_bytes")
	assert.Equal(t, "@daily", view.Settings.Cron, "settings before a purge: cron")
	assert.Nil(t, view.LastReport, "last report before a purge")

	// A run old enough to purge, through the real run store.
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	r := run.Run{ID: "old-run", DeviceID: "dev-1", Command: "show clock", RequestedBy: "t", CreatedAt: time.Now().UTC().Add(-40 * 24 * time.Hour)}
	r, err = runs.Start(ctx, r)
	require.NoError(t, err, "start run %s", r.ID)
	r.Status = run.Succeeded
	require.NoError(t, runs.Finish(ctx, r, []byte("12:00")))

	for _, c := range []struct {
		name   string
		role   auth.Role
		status int
	}{
		{"viewer may not purge", auth.Viewer, http.StatusForbidden},
		{"operator may not purge", auth.Operator, http.StatusForbidden},
		{"admin purges", auth.Admin, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(e.tokens[c.role], http.MethodPost, "/v1/retention/purge", "", nil)
			require.Equal(t, c.status, res.Status, "POST purge as %s: %s", c.role, res.Body)
			if c.status != http.StatusOK {
				return
			}
			var rep retention.Report
			res.JSON(t, &rep)
			assert.Equal(t, "api", rep.Trigger, "report %s: trigger", res.Body)
			assert.True(t, rep.Complete, "report %s: complete", res.Body)
			if assert.NotNil(t, rep.Age, "report %s: age part", res.Body) {
				assert.EqualValues(t, 1, rep.Age.RunsDeleted, "report %s: runs deleted by age", res.Body)
				assert.EqualValues(t, 5, rep.Age.BytesFreed, "report %s: bytes freed by age", res.Body)
			}
		})
	}
	_, err = runs.Get(ctx, "old-run")
	assert.ErrorIs(t, err, run.ErrNotFound, "old run after purge")
	res = e.do("", http.MethodGet, "/v1/retention", "", nil)
	assert.Equal(t, http.StatusUnauthorized, res.Status, "GET without token")
	res = e.do(e.tokens[auth.Admin], http.MethodPost, "/v1/retention/purge", "application/json", []byte(`{"x":1}`))
	assert.Equal(t, http.StatusBadRequest, res.Status, "POST with a body")
	res = e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/retention", "", nil)
	res.JSON(t, &view)
	require.NotNil(t, view.LastReport, "last report (the refused POST ran none): %s", res.Body)
	assert.Equal(t, "api", view.LastReport.Trigger, "last report (the refused POST ran none): %s", res.Body)
	if assert.NotNil(t, view.LastReport.Age, "last report's age part: %s", res.Body) {
		assert.EqualValues(t, 1, view.LastReport.Age.RunsDeleted, "last report (the refused POST ran none): %s", res.Body)
	}
}

// TestRetentionByteTotals: two devices whose runs printed the same output are each charged its
// bytes, while the output is stored once: GET /v1/retention reports the totals and
// GET /v1/devices/{id} a device's own.
func TestRetentionByteTotals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	output := []byte(strings.Repeat("interface GigabitEthernet1\r\n no shutdown\r\n", 60))
	small := []byte("12:00:00 UTC\n")
	for i, dev := range []string{"tot-1", "tot-2"} {
		res := e.do(e.tokens[auth.Admin], http.MethodPost, "/v1/devices", "application/json", mustJSON(t, deviceJSON(dev, nil)))
		require.Equal(t, http.StatusCreated, res.Status, "create %s: %s", dev, res.Body)
		for j, out := range [][]byte{output, small} {
			r := run.Run{ID: fmt.Sprintf("tot-run-%d-%d", i, j), DeviceID: dev, Command: "show running-config", RequestedBy: "t",
				CreatedAt: time.Now().UTC(), Status: run.Succeeded, Bytes: int64(len(out)), Chunks: 1, NoiseOK: true,
				PreviousRunID: "before", Changed: new(bool)} // a repeated, unchanged output: stored once
			require.NoError(t, runs.FinishNew(ctx, r, out))
		}
	}
	var view struct {
		ChargedBytes *int64     `json:"charged_bytes"`
		StoredBytes  *int64     `json:"stored_bytes"`
		TotalsAsOf   *time.Time `json:"totals_as_of"`
	}
	res := e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/retention", "", nil)
	require.Equal(t, http.StatusOK, res.Status, "GET /v1/retention: %s", res.Body)
	res.JSON(t, &view)
	assert.Nil(t, view.TotalsAsOf, "no purge has folded the totals yet: %s", res.Body)
	if assert.NotNil(t, view.ChargedBytes, "charged_bytes: %s", res.Body) {
		assert.Zero(t, *view.ChargedBytes, "charged before the first purge folds it: %s", res.Body)
	}

	// The purge folds the devices' bytes; a device deleted from the inventory still counts.
	res = e.do(e.tokens[auth.Admin], http.MethodDelete, "/v1/devices/tot-2", "", nil)
	require.Equal(t, http.StatusNoContent, res.Status, "delete tot-2: %s", res.Body)
	before := time.Now().UTC()
	res = e.do(e.tokens[auth.Admin], http.MethodPost, "/v1/retention/purge", "", nil)
	require.Equal(t, http.StatusOK, res.Status, "purge: %s", res.Body)
	res = e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/retention", "", nil)
	require.Equal(t, http.StatusOK, res.Status, "GET /v1/retention: %s", res.Body)
	view.TotalsAsOf = nil
	res.JSON(t, &view)
	if assert.NotNil(t, view.TotalsAsOf, "totals_as_of: %s", res.Body) {
		assert.WithinDuration(t, before, *view.TotalsAsOf, time.Minute, "totals_as_of is the purge's")
	}
	each := int64(len(output) + len(small))
	require.NotNil(t, view.ChargedBytes, "charged_bytes: %s", res.Body)
	require.NotNil(t, view.StoredBytes, "stored_bytes: %s", res.Body)
	assert.Equal(t, 2*each, *view.ChargedBytes, "charged: both devices' exact outputs (tot-2 deleted from the inventory, its runs not)")
	assert.Equal(t, int64(len(output)+2*len(small)), *view.StoredBytes, "stored: the shared output once, the small ones each")

	res = e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/devices/tot-1", "", nil)
	require.Equal(t, http.StatusOK, res.Status, "GET device: %s", res.Body)
	view.ChargedBytes, view.StoredBytes = nil, nil
	res.JSON(t, &view)
	require.NotNil(t, view.ChargedBytes, "device charged_bytes: %s", res.Body)
	require.NotNil(t, view.StoredBytes, "device stored_bytes: %s", res.Body)
	assert.Equal(t, each, *view.ChargedBytes, "the device is charged its exact outputs")
	assert.Equal(t, int64(len(small)), *view.StoredBytes, "the device alone keeps its small output")

	// The output stored once reads back byte for byte, CRLF and all, whole and as command 0.
	for _, path := range []string{"/v1/runs/tot-run-0-0/output", "/v1/runs/tot-run-0-0/output?command=0"} {
		res = e.do(e.tokens[auth.Viewer], http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusOK, res.Status, "GET %s: %s", path, res.Body)
		assert.Equal(t, string(output), string(res.Body), "GET %s", path)
	}
}
