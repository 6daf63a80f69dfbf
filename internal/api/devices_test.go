package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

func TestDeviceCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]

	resp := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("r1", nil)))
	require.Equal(t, http.StatusCreated, resp.Status, "create: %s", resp.Body)
	var created device.Device
	resp.JSON(t, &created)
	assert.Equal(t, "r1", created.ID, "created %+v: id", created)
	assert.EqualValues(t, 1, created.Version, "created %+v: version", created)
	assert.True(t, created.HasCredential, "created %+v: has_credential", created)
	assert.Equal(t, 22, created.Port, "created %+v: port", created)
	assert.Equal(t, device.AuthPassword, created.AuthMethod, "created %+v: auth_method", created)
	assert.Equal(t, "/v1/devices/r1", resp.Header.Get("Location"), "Location")
	cred, err := e.secrets.Get(context.Background(), device.SecretName("r1"))
	if assert.NoError(t, err, "stored credential of r1") {
		assert.True(t, cred.Password == "s3cret-r1", "stored credential of r1: the password differs") // not printed
	}

	resp = e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("r1", map[string]any{"name": "other"})))
	var eb errorBody
	resp.JSON(t, &eb)
	assert.Equal(t, http.StatusConflict, resp.Status, "duplicate create: %s", resp.Body)
	assert.Equal(t, "id", eb.Error.Field, "duplicate create: error field")
	stored, _ := e.store.Get(context.Background(), "r1")
	assert.Equal(t, "router r1", stored.Name, "duplicate create overwrote device r1's name")

	resp = e.do(e.tokens[auth.Viewer], "GET", "/v1/devices/r1", "", nil)
	var got device.Device
	resp.JSON(t, &got)
	assert.Equal(t, http.StatusOK, resp.Status, "get r1: %s", resp.Body)
	assert.Equal(t, "router r1", got.Name, "get r1: name")
	assert.Equal(t, "core", got.Tags["role"], "get r1: tags.role")

	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"site":"fra2","tags":{"role":"edge"},"version":1}`))
	resp.JSON(t, &got)
	assert.Equal(t, http.StatusOK, resp.Status, "patch r1: %s", resp.Body)
	assert.Equal(t, "fra2", got.Site, "patch r1: site")
	assert.Equal(t, "edge", got.Tags["role"], "patch r1: tags.role")
	assert.EqualValues(t, 2, got.Version, "patch r1: version")
	assert.Equal(t, "router r1", got.Name, "patch r1: name")
	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"site":"lon1"}`), "If-Match", `"1"`)
	resp.JSON(t, &eb)
	assert.Equal(t, http.StatusConflict, resp.Status, "stale If-Match: %s", resp.Body)
	assert.Equal(t, "version", eb.Error.Field, "stale If-Match: error field")
	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"password":"rotated-pw-r1"}`), "If-Match", `"2"`)
	require.Equal(t, http.StatusOK, resp.Status, "rotate password: %s", resp.Body)
	require.Equal(t, `"3"`, resp.Header.Get("ETag"), "rotate password: ETag")
	c, _ := e.secrets.Get(context.Background(), device.SecretName("r1"))
	assert.True(t, c.Password == "rotated-pw-r1", "password rotation did not reach the secret store") // not printed

	resp = e.do(admin, "DELETE", "/v1/devices/r1", "", nil)
	assert.Equal(t, http.StatusNoContent, resp.Status, "delete r1: %s", resp.Body)
	resp = e.do(admin, "GET", "/v1/devices/r1", "", nil)
	assert.Equal(t, http.StatusNotFound, resp.Status, "get r1 after delete")
	_, err = e.secrets.Get(context.Background(), device.SecretName("r1"))
	assert.Error(t, err, "delete left r1's credential behind")
	resp = e.do(admin, "DELETE", "/v1/devices/r1", "", nil)
	assert.Equal(t, http.StatusNotFound, resp.Status, "second delete of r1")
	e.assertNoSecrets("s3cret-r1", "rotated-pw-r1")
}

func TestConcurrentUpdatesConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("c1", nil)))
	require.Equal(t, http.StatusCreated, r.Status, "create c1: %s", r.Body)
	const writers = 8
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(admin, "PATCH", "/v1/devices/c1", "application/json", []byte(fmt.Sprintf(`{"site":"s%d","version":1}`, i)))
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		assert.Contains(t, []int{http.StatusOK, http.StatusConflict}, s, "a writer's status")
		if s == http.StatusOK {
			won++
		}
	}
	assert.Equal(t, 1, won, "writers that won the same version (statuses %v)", statuses)
	d, _ := e.store.Get(context.Background(), "c1")
	assert.EqualValues(t, 2, d.Version, "c1's version after one successful update")
}

func TestListPaginatesAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	const n = 260
	rows := make([]map[string]any, n)
	for i := range n {
		platform := []string{"cisco_ios", "juniper_junos", "arista_eos", "linux"}[i%4]
		site := fmt.Sprintf("site%d", i%3)
		tags := map[string]string{"rack": strconv.Itoa(i % 5)}
		if i%10 == 0 {
			tags["pci"] = "yes"
		}
		rows[i] = deviceJSON(fmt.Sprintf("d%03d", i), map[string]any{"platform": platform, "site": site, "tags": tags, "password": nil, "credential_profile": "lab"})
	}
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))

	tests := []struct {
		name  string
		query string
		want  func(i int) bool
	}{
		{"all", "", func(int) bool { return true }},
		{"platform", "platform=juniper_junos", func(i int) bool { return i%4 == 1 }},
		{"site", "site=site2", func(i int) bool { return i%3 == 2 }},
		{"tag key and value", "tag=rack%3D3", func(i int) bool { return i%5 == 3 }},
		{"tag key only", "tag=pci", func(i int) bool { return i%10 == 0 }},
		{"combined", "platform=cisco_ios&site=site0", func(i int) bool { return i%4 == 0 && i%3 == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := map[string]bool{}
			for i := range n {
				if tc.want(i) {
					want[fmt.Sprintf("d%03d", i)] = true
				}
			}
			got := map[string]bool{}
			cursor, pages := "", 0
			for {
				q := "limit=40&" + tc.query
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				r := e.do(e.tokens[auth.Viewer], "GET", "/v1/devices?"+strings.TrimSuffix(q, "&"), "", nil)
				require.Equal(t, http.StatusOK, r.Status, "list: %s", r.Body)
				var page struct {
					Items []device.Device `json:"items"`
					Next  string          `json:"next"`
				}
				r.JSON(t, &page)
				require.LessOrEqual(t, len(page.Items), 40, "items of a page with limit 40")
				for _, d := range page.Items {
					require.False(t, got[d.ID], "device %s listed twice", d.ID)
					got[d.ID] = true
				}
				pages++
				if page.Next == "" {
					break
				}
				require.LessOrEqual(t, pages, 50, "pagination does not end")
				cursor = page.Next
			}
			require.Len(t, got, len(want), "devices listed")
			for id := range want {
				assert.True(t, got[id], "device %s missing", id)
			}
			if tc.name == "all" {
				assert.GreaterOrEqual(t, pages, n/40, "pages for %d devices at 40 a page", n)
			}
		})
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("taken", nil)))
	require.Equal(t, http.StatusCreated, r.Status, "create device taken: %s", r.Body)
	type result struct {
		Error  errorBody `json:"-"`
		Result struct {
			Created int                `json:"created"`
			Rows    []device.RowResult `json:"rows"`
		} `json:"result"`
		Created int                `json:"created"`
		Rows    []device.RowResult `json:"rows"`
	}
	mixed := []map[string]any{
		deviceJSON("ok1", map[string]any{"password": "imp-secret-1"}),
		deviceJSON("bad1", map[string]any{"port": 70000}),
		deviceJSON("taken", nil),
		deviceJSON("ok1", nil),
		deviceJSON("ok2", nil),
	}
	// atomic (default): nothing written, every row explained.
	r = e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, mixed))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "atomic import with bad rows: %s", r.Body)
	var res result
	r.JSON(t, &res)
	wantStatus := []string{"skipped", "invalid", "exists", "invalid", "skipped"}
	require.Len(t, res.Result.Rows, len(wantStatus), "atomic import's rows: %s", r.Body)
	for i, row := range res.Result.Rows {
		assert.EqualValues(t, wantStatus[i], row.Status, "row %d status", i+1)
	}
	require.NotEmpty(t, res.Result.Rows[1].Errors, "row 2's errors")
	assert.Equal(t, "port", res.Result.Rows[1].Errors[0].Field, "row 2's error field: %+v", res.Result.Rows[1])
	require.NotEmpty(t, res.Result.Rows[3].Errors, "row 4's errors")
	assert.Contains(t, res.Result.Rows[3].Errors[0].Message, "row 1", "row 4 (a repeated id) names the first row: %+v", res.Result.Rows[3])
	ex, _ := e.store.Existing(context.Background(), []string{"ok1", "ok2"})
	assert.Empty(t, ex, "atomic import wrote devices despite rejected rows")

	// per-row: the good rows are written.
	r = e.do(admin, "POST", "/v1/devices/import?mode=per-row", "application/json", mustJSON(t, mixed))
	require.Equal(t, http.StatusOK, r.Status, "per-row import: %s", r.Body)
	r.JSON(t, &res)
	assert.Equal(t, 2, res.Created, "per-row created: %+v", res.Rows)
	ex, _ = e.store.Existing(context.Background(), []string{"ok1", "ok2", "bad1"})
	assert.True(t, ex["ok1"], "stored %v, want ok1 and ok2 only", ex)
	assert.True(t, ex["ok2"], "stored %v, want ok1 and ok2 only", ex)
	assert.False(t, ex["bad1"], "stored %v, want ok1 and ok2 only", ex)

	// CSV with a header row.
	csv := "id,name,host,port,platform,username,tags,site,password\n" +
		"csv1,Core 1,core1.example.net,2222,arista_eos,ops,role=core;pod=7,ams1,csv-secret-1\n" +
		"csv2,Core 2,2001:db8::2,,juniper_junos,ops,,ams1,csv-secret-2\n"
	r = e.do(admin, "POST", "/v1/devices/import", "text/csv", []byte(csv))
	require.Equal(t, http.StatusCreated, r.Status, "csv import: %s", r.Body)
	d, err := e.store.Get(context.Background(), "csv1")
	if assert.NoError(t, err, "device csv1") {
		assert.Equal(t, 2222, d.Port, "csv1 %+v: port", d)
		assert.Equal(t, "7", d.Tags["pod"], "csv1 %+v: tags.pod", d)
		assert.Equal(t, "arista_eos", d.Platform, "csv1 %+v: platform", d)
	}
	d, _ = e.store.Get(context.Background(), "csv2")
	assert.Equal(t, 22, d.Port, "csv2's port: the default")
	e.assertNoSecrets("imp-secret-1", "csv-secret-1", "csv-secret-2", "s3cret-ok2")
}
