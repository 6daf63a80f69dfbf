package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

func TestDeviceCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]

	resp := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("r1", nil)))
	if resp.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.Status, resp.Body)
	}
	var created device.Device
	resp.JSON(t, &created)
	if created.ID != "r1" || created.Version != 1 || !created.HasCredential || created.Port != 22 || created.AuthMethod != device.AuthPassword {
		t.Errorf("created = %+v", created)
	}
	if resp.Header.Get("Location") != "/v1/devices/r1" {
		t.Errorf("Location = %q", resp.Header.Get("Location"))
	}
	cred, err := e.secrets.Get(context.Background(), device.SecretName("r1"))
	if err != nil || cred.Password != "s3cret-r1" {
		t.Errorf("stored credential: %v (password matches: %v)", err, cred.Password == "s3cret-r1")
	}

	resp = e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("r1", map[string]any{"name": "other"})))
	var eb errorBody
	resp.JSON(t, &eb)
	if resp.Status != http.StatusConflict || eb.Error.Field != "id" {
		t.Errorf("duplicate create: %d %s, want 409 naming id", resp.Status, resp.Body)
	}
	if got, _ := e.store.Get(context.Background(), "r1"); got.Name != "router r1" {
		t.Errorf("duplicate create overwrote the device: name %q", got.Name)
	}

	resp = e.do(e.tokens[auth.Viewer], "GET", "/v1/devices/r1", "", nil)
	var got device.Device
	resp.JSON(t, &got)
	if resp.Status != 200 || got.Name != "router r1" || got.Tags["role"] != "core" {
		t.Errorf("get: %d %+v", resp.Status, got)
	}

	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"site":"fra2","tags":{"role":"edge"},"version":1}`))
	resp.JSON(t, &got)
	if resp.Status != 200 || got.Site != "fra2" || got.Tags["role"] != "edge" || got.Version != 2 || got.Name != "router r1" {
		t.Errorf("patch: %d %+v", resp.Status, got)
	}
	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"site":"lon1"}`), "If-Match", `"1"`)
	resp.JSON(t, &eb)
	if resp.Status != http.StatusConflict || eb.Error.Field != "version" {
		t.Errorf("stale If-Match: %d %s, want 409", resp.Status, resp.Body)
	}
	resp = e.do(admin, "PATCH", "/v1/devices/r1", "application/json", []byte(`{"password":"rotated-pw-r1"}`), "If-Match", `"2"`)
	if resp.Status != 200 || resp.Header.Get("ETag") != `"3"` {
		t.Fatalf("rotate password: %d %s", resp.Status, resp.Body)
	}
	if c, _ := e.secrets.Get(context.Background(), device.SecretName("r1")); c.Password != "rotated-pw-r1" {
		t.Error("password rotation did not reach the secret store")
	}

	resp = e.do(admin, "DELETE", "/v1/devices/r1", "", nil)
	if resp.Status != http.StatusNoContent {
		t.Errorf("delete: %d %s", resp.Status, resp.Body)
	}
	resp = e.do(admin, "GET", "/v1/devices/r1", "", nil)
	if resp.Status != http.StatusNotFound {
		t.Errorf("get after delete: %d", resp.Status)
	}
	if _, err := e.secrets.Get(context.Background(), device.SecretName("r1")); err == nil {
		t.Error("delete left the credential behind")
	}
	resp = e.do(admin, "DELETE", "/v1/devices/r1", "", nil)
	if resp.Status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", resp.Status)
	}
	e.assertNoSecrets("s3cret-r1", "rotated-pw-r1")
}

func TestConcurrentUpdatesConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	if r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("c1", nil))); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
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
		switch s {
		case 200:
			won++
		case 409:
		default:
			t.Errorf("status %d, want 200 or 409", s)
		}
	}
	if won != 1 {
		t.Errorf("%d writers won the same version, want exactly 1 (statuses %v)", won, statuses)
	}
	d, _ := e.store.Get(context.Background(), "c1")
	if d.Version != 2 {
		t.Errorf("version %d after one successful update, want 2", d.Version)
	}
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
	if r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows)); r.Status != 201 {
		t.Fatalf("import: %d %s", r.Status, truncate(r.Body))
	}

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
				if r.Status != 200 {
					t.Fatalf("list: %d %s", r.Status, r.Body)
				}
				var page struct {
					Items []device.Device `json:"items"`
					Next  string          `json:"next"`
				}
				r.JSON(t, &page)
				if len(page.Items) > 40 {
					t.Fatalf("page of %d items, limit 40", len(page.Items))
				}
				for _, d := range page.Items {
					if got[d.ID] {
						t.Fatalf("%s listed twice", d.ID)
					}
					got[d.ID] = true
				}
				pages++
				if page.Next == "" {
					break
				}
				if pages > 50 {
					t.Fatal("pagination does not end")
				}
				cursor = page.Next
			}
			if len(got) != len(want) {
				t.Fatalf("listed %d devices, want %d", len(got), len(want))
			}
			for id := range want {
				if !got[id] {
					t.Errorf("%s missing", id)
				}
			}
			if tc.name == "all" && pages < n/40 {
				t.Errorf("%d pages for %d devices at 40 a page", pages, n)
			}
		})
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	if r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("taken", nil))); r.Status != 201 {
		t.Fatal(r.Status)
	}
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
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, mixed))
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("atomic import with bad rows: %d %s", r.Status, r.Body)
	}
	var res result
	r.JSON(t, &res)
	wantStatus := []string{"skipped", "invalid", "exists", "invalid", "skipped"}
	for i, row := range res.Result.Rows {
		if row.Status != wantStatus[i] {
			t.Errorf("row %d status %s, want %s", i+1, row.Status, wantStatus[i])
		}
	}
	if res.Result.Rows[1].Errors[0].Field != "port" || !strings.Contains(res.Result.Rows[3].Errors[0].Message, "row 1") {
		t.Errorf("row errors = %+v", res.Result.Rows)
	}
	if ex, _ := e.store.Existing(context.Background(), []string{"ok1", "ok2"}); len(ex) != 0 {
		t.Errorf("atomic import wrote %v despite rejected rows", ex)
	}

	// per-row: the good rows are written.
	r = e.do(admin, "POST", "/v1/devices/import?mode=per-row", "application/json", mustJSON(t, mixed))
	if r.Status != http.StatusOK {
		t.Fatalf("per-row import: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &res)
	if res.Created != 2 {
		t.Errorf("per-row created %d, want 2: %+v", res.Created, res.Rows)
	}
	if ex, _ := e.store.Existing(context.Background(), []string{"ok1", "ok2", "bad1"}); !ex["ok1"] || !ex["ok2"] || ex["bad1"] {
		t.Errorf("stored %v, want ok1 and ok2 only", ex)
	}

	// CSV with a header row.
	csv := "id,name,host,port,platform,username,tags,site,password\n" +
		"csv1,Core 1,core1.example.net,2222,arista_eos,ops,role=core;pod=7,ams1,csv-secret-1\n" +
		"csv2,Core 2,2001:db8::2,,juniper_junos,ops,,ams1,csv-secret-2\n"
	r = e.do(admin, "POST", "/v1/devices/import", "text/csv", []byte(csv))
	if r.Status != http.StatusCreated {
		t.Fatalf("csv import: %d %s", r.Status, r.Body)
	}
	d, err := e.store.Get(context.Background(), "csv1")
	if err != nil || d.Port != 2222 || d.Tags["pod"] != "7" || d.Platform != "arista_eos" {
		t.Errorf("csv1 = %+v, %v", d, err)
	}
	if d, _ := e.store.Get(context.Background(), "csv2"); d.Port != 22 {
		t.Errorf("csv2 port %d, want default 22", d.Port)
	}
	e.assertNoSecrets("imp-secret-1", "csv-secret-1", "csv-secret-2", "s3cret-ok2")
}
