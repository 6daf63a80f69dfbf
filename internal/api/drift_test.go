package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/drift"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// storeRun stores a finished run of device with output, as the executor would, and returns it.
func storeRun(t *testing.T, e *env, id, device, command string, status run.Status, output string, mutate func(*run.Run)) run.Run {
	t.Helper()
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	at := time.Now().UTC().Truncate(time.Millisecond)
	r := run.Run{ID: id, DeviceID: device, JobID: "jdrift", Command: command, RequestedBy: "admin@example.com", Status: status,
		Attempt: 1, CreatedAt: at, StartedAt: &at, FinishedAt: &at, Bytes: int64(len(output))}
	if mutate != nil {
		mutate(&r)
	}
	ctx := context.Background()
	if len(output) <= run.ChunkSize {
		require.NoError(t, runs.FinishNew(ctx, r, []byte(output)), "store run %s", id)
		return r
	}
	// A longer output goes out in chunks while the run is running, as the executor's does.
	running := r
	running.Status, running.FinishedAt = run.Running, nil
	_, err = runs.Start(ctx, running)
	require.NoError(t, err, "start run %s", id)
	w := run.NewChunkWriter(ctx, runs, r)
	_, err = w.Write([]byte(output))
	require.NoError(t, err, "write output of run %s", id)
	r.Chunks = w.Chunks()
	require.NoError(t, runs.Finish(ctx, r, w.Pending()), "finish run %s", id)
	return r
}

func TestPlatformsAndFilters(t *testing.T) {
	e := newEnv(t)
	viewer, operator, admin := e.tokens[auth.Viewer], e.tokens[auth.Operator], e.tokens[auth.Admin]
	list := func() apiwire.PlatformList {
		r := e.do(viewer, "GET", "/v1/platforms", "", nil)
		require.Equal(t, http.StatusOK, r.Status, "platforms: %s", r.Body)
		var l apiwire.PlatformList
		r.JSON(t, &l)
		return l
	}
	byName := func(l apiwire.PlatformList, name string) apiwire.Platform {
		for _, p := range l.Items {
			if p.Name == name {
				return p
			}
		}
		require.Failf(t, "platform missing", "%s not listed", name)
		return apiwire.Platform{}
	}
	l := list()
	require.Len(t, l.Items, len(platform.Known()), "every platform is listed")
	for _, p := range l.Items {
		require.NotEmpty(t, p.NoiseFilters, "%s has built-in noise filters", p.Name)
		for _, f := range p.NoiseFilters {
			assert.True(t, f.Builtin, "%s's filter %q is built in", p.Name, f.Pattern)
		}
	}
	builtins := len(byName(l, "cisco_iosxe").NoiseFilters)

	tests := []struct {
		name   string
		token  string
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		{"operator may not", operator, "/v1/platforms/cisco_iosxe/filters", `{"filters":[{"pattern":"^x$"}]}`, http.StatusForbidden, "forbidden", ""},
		{"unknown platform", admin, "/v1/platforms/cisco_catos/filters", `{"filters":[]}`, http.StatusNotFound, "not_found", "name"},
		{"filters missing", admin, "/v1/platforms/cisco_iosxe/filters", `{}`, http.StatusBadRequest, "invalid", "filters"},
		{"unknown field", admin, "/v1/platforms/cisco_iosxe/filters", `{"filters":[{"pattern":"^x$","regex":"y"}]}`, http.StatusBadRequest, "", ""},
		{"invalid pattern", admin, "/v1/platforms/cisco_iosxe/filters", `{"filters":[{"pattern":"^ok$"},{"pattern":"(unclosed"}]}`, http.StatusBadRequest, "invalid", "filters[1].pattern"},
		{"pattern matching every blank line", admin, "/v1/platforms/cisco_iosxe/filters", `{"filters":[{"pattern":"^\\s*$"}]}`, http.StatusBadRequest, "invalid", "filters[0].pattern"},
		{"invalid command", admin, "/v1/platforms/cisco_iosxe/filters", `{"filters":[{"pattern":"^x$","command":"[z-a]"}]}`, http.StatusBadRequest, "invalid", "filters[0].command"},
		{"too many", admin, "/v1/platforms/cisco_iosxe/filters", `{"filters":[` + strings.Repeat(`{"pattern":"^x$"},`, drift.MaxCustomFilters) + `{"pattern":"^y$"}]}`, http.StatusBadRequest, "invalid", "filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.forT(t).do(tt.token, "PUT", tt.path, "application/json", []byte(tt.body))
			require.Equal(t, tt.status, r.Status, "status: %s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			if tt.code != "" {
				assert.Equal(t, tt.code, eb.Error.Code, "error code")
			}
			if tt.field != "" {
				assert.Equal(t, tt.field, eb.Error.Field, "error field")
			}
			assert.Len(t, byName(list(), "cisco_iosxe").NoiseFilters, builtins, "nothing stored")
		})
	}

	r := e.do(admin, "PUT", "/v1/platforms/cisco_iosxe/filters", "application/json",
		[]byte(`{"filters":[{"pattern":"^! Site banner \\d+$","command":"^show run","description":"site banner"}]}`))
	require.Equal(t, http.StatusOK, r.Status, "put filters: %s", r.Body)
	var p apiwire.Platform
	r.JSON(t, &p)
	require.Len(t, p.NoiseFilters, builtins+1, "built-ins and the new filter")
	assert.Equal(t, apiwire.NoiseFilter{Pattern: `^! Site banner \d+$`, Command: "^show run", Description: "site banner"}, p.NoiseFilters[builtins], "the admin filter")
	assert.Equal(t, p, byName(list(), "cisco_iosxe"), "the list shows it")
	assert.Len(t, byName(list(), "cisco_ios").NoiseFilters, len(byName(l, "cisco_ios").NoiseFilters), "other platforms unchanged")

	r = e.do(admin, "PUT", "/v1/platforms/cisco_iosxe/filters", "application/json", []byte(`{"filters":[]}`))
	require.Equal(t, http.StatusOK, r.Status, "clear filters: %s", r.Body)
	assert.Len(t, byName(list(), "cisco_iosxe").NoiseFilters, builtins, "an empty list removes the admin filters")
}

func TestRunDiff(t *testing.T) {
	e := newEnv(t)
	viewer, admin := e.tokens[auth.Viewer], e.tokens[auth.Admin]
	seedDevice(e, "drift-r1")
	const cmd = "show running-config"
	night1 := "Building configuration...\r\n\r\nCurrent configuration : 120 bytes\r\n! Last configuration change at 02:14:07 UTC Mon Dec 7 2026\r\nhostname drift-r1\r\ninterface Gi1\r\n shutdown\r\n! Site banner 1\r\nend\r\n"
	night2 := "Building configuration...\n\nCurrent configuration : 124 bytes\n! Last configuration change at 02:14:09 UTC Tue Dec 8 2026\nhostname drift-r1\ninterface Gi1\n no shutdown\n! Site banner 2\nend\n"
	first := storeRun(t, e, "jd1.drift-r1", "drift-r1", cmd, run.Succeeded, night1, nil)
	second := storeRun(t, e, "jd2.drift-r1", "drift-r1", cmd, run.Succeeded, night2, func(r *run.Run) { r.PreviousRunID = first.ID })
	big := storeRun(t, e, "jd4.drift-r1", "drift-r1", cmd, run.Succeeded, "x\n", func(r *run.Run) { r.Bytes = drift.MaxOutputBytes + 1 })
	// Two unrelated outputs of 300,000 short lines: 600 KB each, tens of MB as JSON hunks.
	shortA := storeRun(t, e, "jd5.drift-r1", "drift-r1", cmd, run.Succeeded, strings.Repeat("a\n", 300_000), nil)
	shortB := storeRun(t, e, "jd6.drift-r1", "drift-r1", cmd, run.Succeeded, strings.Repeat("b\n", 300_000), nil)
	// A run whose counter says more than its chunks hold: what a purge leaves half way through.
	purging := storeRun(t, e, "jd7.drift-r1", "drift-r1", cmd, run.Succeeded, night2[:40], func(r *run.Run) { r.Bytes = int64(len(night2)) })

	get := func(t *testing.T, token, path string) response {
		t.Helper()
		return e.forT(t).do(token, "GET", path, "", nil)
	}
	t.Run("text, default against, noise filtered, CRLF against LF", func(t *testing.T) {
		r := get(t, viewer, "/v1/runs/"+second.ID+"/diff")
		require.Equal(t, http.StatusOK, r.Status, "diff: %s", r.Body)
		assert.Equal(t, "text/x-diff; charset=utf-8", r.Header.Get("Content-Type"), "content type")
		assert.Equal(t, first.ID, r.Header.Get("X-Diff-Against"), "against the previous run")
		assert.Equal(t, "true", r.Header.Get("X-Diff-Changed"), "changed")
		// Line numbers count the lines compared: the noise lines are not among them.
		want := "--- " + first.ID + "\n+++ " + second.ID + "\n@@ -2,6 +2,6 @@\n \n hostname drift-r1\n interface Gi1\n- shutdown\n-! Site banner 1\n+ no shutdown\n+! Site banner 2\n end\n"
		assert.Equal(t, want, string(r.Body), "only the real change and the site banner show")
	})
	t.Run("admin filter applies at once", func(t *testing.T) {
		r := e.forT(t).do(admin, "PUT", "/v1/platforms/cisco_ios/filters", "application/json", []byte(`{"filters":[{"pattern":"^! Site banner \\d+$"}]}`))
		require.Equal(t, http.StatusOK, r.Status, "put filters: %s", r.Body)
		r = get(t, viewer, "/v1/runs/"+second.ID+"/diff?format=json&context=0")
		require.Equal(t, http.StatusOK, r.Status, "diff: %s", r.Body)
		var d apiwire.Diff
		r.JSON(t, &d)
		assert.Equal(t, apiwire.Diff{RunID: second.ID, Against: first.ID, Changed: true, Hunks: []apiwire.DiffHunk{{
			OldStart: 5, OldLines: 1, NewStart: 5, NewLines: 1,
			Lines: []apiwire.DiffLine{{Op: "delete", Text: " shutdown"}, {Op: "add", Text: " no shutdown"}},
		}}}, d, "json hunks")
	})
	t.Run("raw shows the noise", func(t *testing.T) {
		r := get(t, viewer, "/v1/runs/"+second.ID+"/diff?raw=1&format=json")
		require.Equal(t, http.StatusOK, r.Status, "diff: %s", r.Body)
		var d apiwire.Diff
		r.JSON(t, &d)
		assert.True(t, d.Raw, "raw")
		assert.Contains(t, string(r.Body), "! Last configuration change at 02:14:09", "noise lines show raw")
	})
	t.Run("unrelated short lines: text, but not JSON, fits a response", func(t *testing.T) {
		r := get(t, viewer, "/v1/runs/"+shortB.ID+"/diff?against="+shortA.ID)
		require.Equal(t, http.StatusOK, r.Status, "text diff: %.200s", r.Body)
		assert.Equal(t, 300_000, strings.Count(string(r.Body), "\n+b"), "every line added")
		r = get(t, viewer, "/v1/runs/"+shortB.ID+"/diff?against="+shortA.ID+"&format=json")
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "json diff: %.200s", r.Body)
		var eb errorBody
		r.JSON(t, &eb)
		assert.Equal(t, "diff_too_large", eb.Error.Code, "code")
		assert.Equal(t, "format", eb.Error.Field, "field")
	})
	t.Run("against itself", func(t *testing.T) {
		r := get(t, viewer, "/v1/runs/"+second.ID+"/diff?against="+second.ID)
		require.Equal(t, http.StatusOK, r.Status, "diff: %s", r.Body)
		assert.Empty(t, r.Body, "no difference, no text")
		assert.Equal(t, "false", r.Header.Get("X-Diff-Changed"), "not changed")
	})
	errs := []struct {
		name, path string
		status     int
		code       string
		field      string
	}{
		{"first run has no default", "/v1/runs/" + first.ID + "/diff", http.StatusNotFound, "no_previous_run", "against"},
		{"unknown against", "/v1/runs/" + second.ID + "/diff?against=jnone.drift-r1", http.StatusNotFound, "not_found", "against"},
		{"bad against", "/v1/runs/" + second.ID + "/diff?against=" + url.QueryEscape("a/b"), http.StatusBadRequest, "invalid", "against"},
		{"bad format", "/v1/runs/" + second.ID + "/diff?format=html", http.StatusBadRequest, "invalid", "format"},
		{"bad raw", "/v1/runs/" + second.ID + "/diff?raw=yes", http.StatusBadRequest, "invalid", "raw"},
		{"bad context", "/v1/runs/" + second.ID + "/diff?context=21", http.StatusBadRequest, "invalid", "context"},
		{"too large", "/v1/runs/" + big.ID + "/diff?against=" + first.ID, http.StatusUnprocessableEntity, "output_too_large", "id"},
		{"too large against", "/v1/runs/" + first.ID + "/diff?against=" + big.ID, http.StatusUnprocessableEntity, "output_too_large", "against"},
		{"unknown run", "/v1/runs/jnone.drift-r1/diff", http.StatusNotFound, "not_found", "id"},
		{"output being purged", "/v1/runs/" + purging.ID + "/diff?against=" + first.ID, http.StatusConflict, "output_incomplete", "id"},
		{"against being purged", "/v1/runs/" + first.ID + "/diff?against=" + purging.ID, http.StatusConflict, "output_incomplete", "against"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, viewer, tt.path)
			require.Equal(t, tt.status, r.Status, "status: %s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tt.code, eb.Error.Code, "code")
			assert.Equal(t, tt.field, eb.Error.Field, "field")
		})
	}
	t.Run("not finished", func(t *testing.T) {
		r := e.forT(t).do(e.tokens[auth.Operator], "POST", "/v1/runs", "application/json", []byte(`{"device_id":"drift-r1","command":"show clock"}`))
		require.Equal(t, http.StatusAccepted, r.Status, "run: %s", r.Body)
		var acc apiwire.RunAccepted
		r.JSON(t, &acc)
		r = get(t, viewer, "/v1/runs/"+acc.RunID+"/diff?against="+first.ID)
		require.Equal(t, http.StatusConflict, r.Status, "status: %s", r.Body)
		var eb errorBody
		r.JSON(t, &eb)
		assert.Equal(t, "run_not_finished", eb.Error.Code, "code")
		assert.Equal(t, "id", eb.Error.Field, "field")
	})
}

// TestRunDiffSequenceNoise: a sequence's diff leaves out the noise of each of its commands: an
// admin filter for show running-config applies after a show version too.
func TestRunDiffSequenceNoise(t *testing.T) {
	e := newEnv(t)
	viewer, admin := e.tokens[auth.Viewer], e.tokens[auth.Admin]
	seedDevice(e, "drift-s1")
	r := e.do(admin, "PUT", "/v1/platforms/cisco_ios/filters", "application/json", []byte(`{"filters":[{"pattern":"^! Site banner \\d+$","command":"^show run"}]}`))
	require.Equal(t, http.StatusOK, r.Status, "put filters: %s", r.Body)
	sequence := func(version, config string) func(*run.Run) {
		return func(r *run.Run) {
			r.Command = run.Summary("show version", 2)
			r.Commands = []run.CommandResult{
				{Command: "show version", Status: run.Succeeded, Bytes: int64(len(version))},
				{Command: "show running-config", Status: run.Succeeded, Offset: int64(len(version)), Bytes: int64(len(config))},
			}
		}
	}
	const version = "Cisco IOS Software, Version 17.9\n"
	config1 := "hostname drift-s1\ninterface Gi1\n shutdown\n! Site banner 1\nend\n"
	config2 := "hostname drift-s1\ninterface Gi1\n no shutdown\n! Site banner 2\nend\n"
	first := storeRun(t, e, "js1.drift-s1", "drift-s1", "", run.Succeeded, version+config1, sequence(version, config1))
	second := storeRun(t, e, "js2.drift-s1", "drift-s1", "", run.Succeeded, version+config2, sequence(version, config2))

	r = e.do(viewer, "GET", "/v1/runs/"+second.ID+"/diff?against="+first.ID+"&format=json&context=0", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "diff: %s", r.Body)
	var d apiwire.Diff
	r.JSON(t, &d)
	assert.Equal(t, []apiwire.DiffHunk{{
		OldStart: 4, OldLines: 1, NewStart: 4, NewLines: 1,
		Lines: []apiwire.DiffLine{{Op: "delete", Text: " shutdown"}, {Op: "add", Text: " no shutdown"}},
	}}, d.Hunks, "only the real change: the banner is show running-config's noise")
}

func TestDeviceHistory(t *testing.T) {
	e := newEnv(t)
	viewer := e.tokens[auth.Viewer]
	seedDevice(e, "hist-r1")
	var want []string
	for i := range 5 {
		changed := i%2 == 0
		r := storeRun(t, e, fmt.Sprintf("jh%d.hist-r1", i), "hist-r1", "show running-config", run.Succeeded, fmt.Sprintf("config %d\n", i), func(r *run.Run) {
			r.CreatedAt = r.CreatedAt.Add(time.Duration(i) * time.Second)
			r.Changed, r.FilteredDigest = &changed, fmt.Sprintf("%032x", i)
		})
		want = append([]string{r.ID}, want...)
	}
	storeRun(t, e, "jhx.hist-r1", "hist-r1", "show version", run.Succeeded, "v\n", nil)

	var got []apiwire.Run
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "paging ends")
		r := e.do(viewer, "GET", "/v1/devices/hist-r1/history?limit=2&command="+url.QueryEscape("show running-config")+"&cursor="+cursor, "", nil)
		require.Equal(t, http.StatusOK, r.Status, "history: %s", r.Body)
		var l apiwire.RunList
		r.JSON(t, &l)
		require.LessOrEqual(t, len(l.Items), 2, "limit")
		got = append(got, l.Items...)
		if l.Next == "" {
			break
		}
		cursor = url.QueryEscape(l.Next)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
		require.NotNil(t, r.Changed, "changed of %s", r.ID)
	}
	assert.Equal(t, want, ids, "newest first, only show running-config")
	assert.True(t, *got[0].Changed, "changed of the newest")
	assert.False(t, *got[1].Changed, "changed of the second")

	for _, tt := range []struct{ name, query, field string }{
		{"command missing", "", "command"},
		{"command too long", "?command=" + strings.Repeat("x", 4097), "command"},
		{"bad limit", "?command=x&limit=0", "limit"},
		{"bad cursor", "?command=x&cursor=zzz", "cursor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.forT(t).do(viewer, "GET", "/v1/devices/hist-r1/history"+tt.query, "", nil)
			require.Equal(t, http.StatusBadRequest, r.Status, "status: %s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tt.field, eb.Error.Field, "field")
		})
	}
	r := e.do(viewer, "GET", "/v1/devices/no-such/history?command=x", "", nil)
	assert.Equal(t, http.StatusNotFound, r.Status, "unknown device: %s", r.Body)
	r = e.do(viewer, "GET", "/v1/bulk/jdrift/devices?changed=maybe", "", nil)
	require.Equal(t, http.StatusBadRequest, r.Status, "bad changed: %s", r.Body)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "changed", eb.Error.Field, "field")
}
