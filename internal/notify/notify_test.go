package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/notify/notifytest"
)

var (
	t0       = time.Date(2026, 12, 6, 22, 0, 0, 123456789, time.FixedZone("CET", 3600))
	pinned   = "SHA256:" + "uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
	presents = "SHA256:" + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
)

func manyFailed(n int) []notify.FailedDevice {
	out := make([]notify.FailedDevice, n)
	for i := range out {
		out[i] = notify.FailedDevice{DeviceID: fmt.Sprintf("d%03d", i), Name: "r", Status: "unreachable", Reason: "connect_refused"}
	}
	return out
}

func manyChanged(n int) []notify.ChangedDevice {
	out := make([]notify.ChangedDevice, n)
	for i := range out {
		out[i] = notify.ChangedDevice{DeviceID: fmt.Sprintf("d%03d", i), Name: "r", RunID: "j.d", PreviousRunID: "i.d"}
	}
	return out
}

func jobFinished() notify.JobFinished {
	return notify.JobFinished{
		JobID: "job1", Status: "completed", RequestedBy: "alice", Command: "show version",
		StartedAt: t0, FinishedAt: t0.Add(time.Minute),
		Counts: map[string]int{"succeeded": 2, "unreachable": 1},
		Failed: []notify.FailedDevice{{DeviceID: "d3", Name: "core-3", Status: "unreachable", Reason: "connect_refused"}},
	}
}

func hostKey() notify.HostKeyMismatch {
	return notify.HostKeyMismatch{Kind: notify.KindDevice, ID: "d1", Name: "core-1", Host: "10.0.0.1", Port: 22,
		PresentedFingerprint: presents, PinnedFingerprint: pinned, JobID: "job1", RunID: "job1.d1", SeenAt: t0}
}

func TestEventsMatchTheirSchemas(t *testing.T) {
	tests := []struct {
		name  string
		event notify.Event
	}{
		{"job finished", notify.NewJobFinished(jobFinished())},
		{"job finished by a saved job, nothing failed", notify.NewJobFinished(func() notify.JobFinished {
			d := jobFinished()
			d.SavedJobID, d.Failed, d.Counts = "sj1", nil, nil
			return d
		}())},
		{"job finished with too many failed", notify.NewJobFinished(func() notify.JobFinished {
			d := jobFinished()
			d.Status, d.Failed = "stopped", manyFailed(150)
			return d
		}())},
		{"output changed", notify.NewOutputChanged(notify.OutputChanged{JobID: "job1", Command: "show run",
			Changed: []notify.ChangedDevice{{DeviceID: "d1", Name: "core-1", RunID: "job1.d1", PreviousRunID: "job0.d1"}}}, t0)},
		{"output changed on too many", notify.NewOutputChanged(notify.OutputChanged{JobID: "job1", Command: "show run",
			Changed: manyChanged(101)}, t0)},
		{"output changed, the previous run not read (bulk.Notices sends it without)", notify.NewOutputChanged(notify.OutputChanged{JobID: "job1", Command: "show run",
			Changed: []notify.ChangedDevice{{DeviceID: "d1", Name: "core-1", RunID: "job1.d1"}}}, t0)},
		{"device host key mismatch", notify.NewHostKeyMismatch(hostKey())},
		{"jump host key mismatch without a run", notify.NewHostKeyMismatch(func() notify.HostKeyMismatch {
			d := hostKey()
			d.Kind, d.JobID, d.RunID = notify.KindJumpHost, "", ""
			return d
		}())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notifytest.RequireValidEvent(t, tt.event)
			assert.Contains(t, notify.DetailTypes(), tt.event.DetailType)
			assert.Equal(t, time.UTC, tt.event.Time.Location())
		})
	}
}

func TestSchemasRejectWhatTheyShould(t *testing.T) {
	tests := []struct {
		name       string
		detailType string
		mutate     func(map[string]any)
	}{
		{"job finished without version", notify.DetailTypeJobFinished, func(m map[string]any) { delete(m, "version") }},
		{"job finished of version 2", notify.DetailTypeJobFinished, func(m map[string]any) { m["version"] = 2 }},
		{"job finished still running", notify.DetailTypeJobFinished, func(m map[string]any) { m["status"] = "running" }},
		{"job finished at a bad time", notify.DetailTypeJobFinished, func(m map[string]any) { m["finished_at"] = "yesterday" }},
		{"job finished with an unknown count", notify.DetailTypeJobFinished, func(m map[string]any) { m["counts"] = map[string]any{"weird": 1} }},
		{"job finished with an extra field", notify.DetailTypeJobFinished, func(m map[string]any) { m["password"] = "x" }},
		{"output changed with none", notify.DetailTypeOutputChanged, func(m map[string]any) { m["changed"] = []any{}; m["changed_count"] = 0 }},
		{"host key of another kind", notify.DetailTypeHostKeyMismatch, func(m map[string]any) { m["kind"] = "router" }},
		{"host key fingerprint in MD5", notify.DetailTypeHostKeyMismatch, func(m map[string]any) { m["pinned_fingerprint"] = "MD5:aa:bb" }},
		{"host key port 0", notify.DetailTypeHostKeyMismatch, func(m map[string]any) { m["port"] = 0 }},
	}
	valid := map[string]notify.Event{
		notify.DetailTypeJobFinished:     notify.NewJobFinished(jobFinished()),
		notify.DetailTypeOutputChanged:   notify.NewOutputChanged(notify.OutputChanged{JobID: "j", Command: "c", Changed: manyChanged(1)}, t0),
		notify.DetailTypeHostKeyMismatch: notify.NewHostKeyMismatch(hostKey()),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := valid[tt.detailType].DetailJSON()
			require.NoError(t, err)
			require.NoError(t, notifytest.ValidateDetail(tt.detailType, b), "the unmutated detail is valid")
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			tt.mutate(m)
			b, err = json.Marshal(m)
			require.NoError(t, err)
			assert.Error(t, notifytest.ValidateDetail(tt.detailType, b))
		})
	}
}

func TestNewEventsCapAndFill(t *testing.T) {
	jf := notify.NewJobFinished(func() notify.JobFinished { d := jobFinished(); d.Failed = manyFailed(150); return d }())
	d := jf.Detail.(notify.JobFinished)
	assert.Equal(t, notify.Version, d.Version)
	assert.Len(t, d.Failed, notify.MaxListed)
	assert.True(t, d.FailedTruncated)
	assert.Equal(t, "/?job=job1", d.UIPath)
	assert.Equal(t, t0.Add(time.Minute).UTC(), jf.Time)

	oc := notify.NewOutputChanged(notify.OutputChanged{JobID: "j", Changed: manyChanged(130)}, t0).Detail.(notify.OutputChanged)
	assert.Equal(t, 130, oc.ChangedCount, "the count keeps the devices the list drops")
	assert.Len(t, oc.Changed, notify.MaxListed)
	assert.True(t, oc.ChangedTruncated)

	oc = notify.NewOutputChanged(notify.OutputChanged{JobID: "j", Changed: manyChanged(3)}, t0).Detail.(notify.OutputChanged)
	assert.Equal(t, 3, oc.ChangedCount)
	assert.False(t, oc.ChangedTruncated)
}

type recorder struct {
	got []notify.Event
	err error
}

func (r *recorder) Publish(_ context.Context, events ...notify.Event) error {
	r.got = append(r.got, events...)
	return r.err
}

func TestFanoutReachesEveryPublisher(t *testing.T) {
	failing := &recorder{err: errors.New("bus down")}
	ok := &recorder{}
	e := notify.NewHostKeyMismatch(hostKey())
	err := notify.Fanout{failing, nil, ok}.Publish(context.Background(), e)
	require.ErrorContains(t, err, "bus down")
	assert.Len(t, failing.got, 1)
	assert.Len(t, ok.got, 1, "a failing publisher does not keep the event from the next")
	assert.NoError(t, notify.Nop{}.Publish(context.Background(), e))
}
