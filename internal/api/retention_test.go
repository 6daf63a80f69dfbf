package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

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
	if res.Status != http.StatusOK {
		t.Fatalf("GET /v1/retention = %d %s", res.Status, res.Body)
	}
	var view struct {
		Settings   retention.Settings `json:"settings"`
		LastReport *retention.Report  `json:"last_report"`
	}
	res.JSON(t, &view)
	if view.Settings.MaxDays != 30 || view.Settings.MaxBytes != 1<<20 || view.Settings.Cron != "@daily" || view.LastReport != nil {
		t.Errorf("view before a purge = %+v", view)
	}

	// A run old enough to purge, through the real run store.
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	r := run.Run{ID: "old-run", DeviceID: "dev-1", Command: "show clock", RequestedBy: "t", CreatedAt: time.Now().UTC().Add(-40 * 24 * time.Hour)}
	if r, err = runs.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
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
			if res.Status != c.status {
				t.Fatalf("POST purge as %s = %d %s", c.role, res.Status, res.Body)
			}
			if c.status != http.StatusOK {
				return
			}
			var rep retention.Report
			res.JSON(t, &rep)
			if rep.Trigger != "api" || rep.Age == nil || rep.Age.RunsDeleted != 1 || rep.Age.BytesFreed != 5 || !rep.Complete {
				t.Errorf("report = %s", res.Body)
			}
		})
	}
	if _, err := runs.Get(ctx, "old-run"); err != run.ErrNotFound {
		t.Errorf("old run after purge: %v, want not found", err)
	}
	if res := e.do("", http.MethodGet, "/v1/retention", "", nil); res.Status != http.StatusUnauthorized {
		t.Errorf("GET without token = %d", res.Status)
	}
	if res := e.do(e.tokens[auth.Admin], http.MethodPost, "/v1/retention/purge", "application/json", []byte(`{"x":1}`)); res.Status != http.StatusBadRequest {
		t.Errorf("POST with a body = %d", res.Status)
	}
	res = e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/retention", "", nil)
	res.JSON(t, &view)
	if view.LastReport == nil || view.LastReport.Age == nil || view.LastReport.Age.RunsDeleted != 1 || view.LastReport.Trigger != "api" {
		t.Errorf("last report (the refused POST ran none) = %s", res.Body)
	}
}
