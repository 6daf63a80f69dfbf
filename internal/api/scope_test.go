package api_test

// Scoped roles on every route: a token whose only group is "<role>:ams1" reaches the devices, runs
// and jobs of site ams1 and nothing else. The routes come from openapi.yaml, and every
// authenticated one needs a row in scopeCases: a route added without a row fails the test, so it
// must say how it honours scope.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// scopeFixture is what the scope test reads and changes: devices on ams1 (in scope), fra1 and no
// site (out of scope), a stored run and a job on each side, and a job spanning both sites.
type scopeFixture struct {
	e *env
	// in is a device on ams1; out one on fra1; bare one without a site.
	in, out, bare string
	// runIn and runOut are stored runs (with output) of in and out.
	runIn, runOut string
	// jobIn holds only in; jobOut only out; jobMixed both.
	jobIn, jobOut, jobMixed string
	// tokens are "<role>:ams1" tokens by role.
	tokens map[auth.Role]string
}

// outOfScopeOutput is the output of the fra1 device's run: it must never reach the scoped caller.
const outOfScopeOutput = "fra1-running-config-secret-banner"

func newScopeFixture(t *testing.T) *scopeFixture {
	t.Helper()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	f := &scopeFixture{e: e, in: "ams-r1", out: "fra-r1", bare: "lab-r1", tokens: map[auth.Role]string{}}
	for id, site := range map[string]any{f.in: "ams1", f.out: "fra1", f.bare: nil} {
		r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, map[string]any{"site": site})))
		require.Equal(t, http.StatusCreated, r.Status, "seed %s: %s", id, r.Body)
	}
	bulk := func(ids ...string) string {
		t.Helper()
		r := e.do(admin, "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{"command": "show version", "device_ids": ids}))
		require.Equal(t, http.StatusAccepted, r.Status, "bulk on %v: %s", ids, r.Body)
		var acc struct {
			JobID string `json:"job_id"`
		}
		r.JSON(t, &acc)
		return acc.JobID
	}
	f.jobIn, f.jobOut, f.jobMixed = bulk(f.in), bulk(f.out), bulk(f.in, f.out)
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	store := func(device, output string) string {
		t.Helper()
		at := time.Now().Add(-time.Minute).UTC()
		rr := run.Run{ID: "jstored." + device, DeviceID: device, JobID: "jstored", Command: "show running-config",
			RequestedBy: "admin@example.com", Status: run.Running, Attempt: 1, CreatedAt: at, StartedAt: &at}
		started, err := runs.Start(context.Background(), rr)
		require.NoError(t, err, "start %s", rr.ID)
		started.Status, started.FinishedAt, started.Bytes = run.Succeeded, &at, int64(len(output))
		require.NoError(t, runs.Finish(context.Background(), started, []byte(output)), "finish %s", rr.ID)
		return rr.ID
	}
	f.runIn, f.runOut = store(f.in, "ams1 output\n"), store(f.out, outOfScopeOutput+"\n")
	for _, role := range []auth.Role{auth.Viewer, auth.Operator, auth.Admin} {
		tok, err := e.signer.Issue(auth.TokenSpec{Subject: "scoped-" + string(role), Email: string(role) + "-ams1@example.com",
			Groups: []string{string(role) + ":ams1"}})
		require.NoError(t, err)
		f.tokens[role] = tok
	}
	return f
}

// call sends a request as the "<role>:ams1" caller.
func (f *scopeFixture) call(t *testing.T, role auth.Role, method, path string, body any) response {
	t.Helper()
	e := f.e.forT(t)
	var b []byte
	ctype := ""
	if body != nil {
		b, ctype = mustJSON(t, body), "application/json"
	}
	return e.do(f.tokens[role], method, path, ctype, b)
}

// wantStatus fails unless r has the status (and, for an error, the code).
func wantStatus(t *testing.T, r response, status int, code, what string) {
	t.Helper()
	require.Equal(t, status, r.Status, "%s: body %s", what, truncate(r.Body))
	if code != "" {
		var eb errorBody
		r.JSON(t, &eb)
		assert.Equal(t, code, eb.Error.Code, "%s: error code", what)
	}
}

// listedIDs reads the ids of a list answer's items (under key).
func listedIDs(t *testing.T, r response, key string) []string {
	t.Helper()
	var out struct {
		Items []map[string]any `json:"items"`
	}
	r.JSON(t, &out)
	var ids []string
	for _, it := range out.Items {
		ids = append(ids, fmt.Sprint(it[key]))
	}
	sort.Strings(ids)
	return ids
}

// scopeCase checks one route as the "<role>:ams1" caller, role being the route's x-netauto-role:
// in scope it serves, out of scope it answers 403 or 404 (or leaves the item out of a list).
type scopeCase func(t *testing.T, f *scopeFixture, role auth.Role)

// globalOnly is the row of a route that needs its role everywhere (x-netauto-scope global): even
// the admin of a site is refused it.
var globalOnly scopeCase

var scopeCases = map[string]scopeCase{
	"POST /v1/devices": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "POST", "/v1/devices", deviceJSON("ams-new", map[string]any{"site": "ams1"}))
		wantStatus(t, r, http.StatusCreated, "", "create on ams1")
		r = f.call(t, role, "POST", "/v1/devices", deviceJSON("fra-new", map[string]any{"site": "fra1"}))
		wantStatus(t, r, http.StatusForbidden, "forbidden", "create on fra1")
		r = f.call(t, role, "POST", "/v1/devices", deviceJSON("bare-new", map[string]any{"site": nil}))
		wantStatus(t, r, http.StatusForbidden, "forbidden", "create without a site")
		_, err := f.e.store.Get(context.Background(), "fra-new")
		assert.Error(t, err, "the fra1 device was created")
	},
	"GET /v1/devices": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/devices?limit=1000", nil)
		wantStatus(t, r, http.StatusOK, "", "list")
		ids := listedIDs(t, r, "id")
		assert.Contains(t, ids, f.in, "the list holds the ams1 device")
		assert.NotContains(t, ids, f.out, "the list holds the fra1 device")
		assert.NotContains(t, ids, f.bare, "the list holds the device without a site")
		r = f.call(t, role, "GET", "/v1/devices?site=fra1", nil)
		wantStatus(t, r, http.StatusOK, "", "list of site fra1")
		assert.Empty(t, listedIDs(t, r, "id"), "the list of site fra1")
	},
	"POST /v1/devices/import": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "POST", "/v1/devices/import", []any{
			deviceJSON("imp-ams", map[string]any{"site": "ams1"}), deviceJSON("imp-fra", map[string]any{"site": "fra1"}),
		})
		wantStatus(t, r, http.StatusForbidden, "forbidden", "import with a fra1 row")
		var eb errorBody
		r.JSON(t, &eb)
		assert.Equal(t, "rows[2].site", eb.Error.Field, "the refusal names the row")
		_, err := f.e.store.Get(context.Background(), "imp-ams")
		assert.Error(t, err, "a refused import wrote its in-scope row")
		r = f.call(t, role, "POST", "/v1/devices/import", []any{deviceJSON("imp-ams", map[string]any{"site": "ams1"})})
		wantStatus(t, r, http.StatusCreated, "", "import of an ams1 row")
	},
	"POST /v1/devices/last-runs": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "POST", "/v1/devices/last-runs", map[string]any{"device_ids": []string{f.in, f.out}})
		wantStatus(t, r, http.StatusOK, "", "last runs")
		var out struct {
			Items map[string]any `json:"items"`
		}
		r.JSON(t, &out)
		assert.Contains(t, out.Items, f.in, "the ams1 device's last run")
		assert.NotContains(t, out.Items, f.out, "the fra1 device's last run")
	},
	"POST /v1/devices/bulk-update": func(t *testing.T, f *scopeFixture, role auth.Role) {
		clear := map[string]any{"jump_host_ids": []string{}}
		r := f.call(t, role, "POST", "/v1/devices/bulk-update", map[string]any{"device_ids": []string{f.in, f.out, f.bare}, "set": clear})
		wantStatus(t, r, http.StatusBadRequest, "invalid", "bulk update with fra1 and site-less devices")
		var rej apiwire.DeviceBulkRejected
		r.JSON(t, &rej)
		assert.Equal(t, []string{f.out, f.bare}, rej.UnknownIDs, "the out-of-scope devices are named as unknown")
		in, err := f.e.store.Get(context.Background(), f.in)
		require.NoError(t, err)
		r = f.call(t, role, "POST", "/v1/devices/bulk-update", map[string]any{"device_ids": []string{f.in}, "set": clear})
		wantStatus(t, r, http.StatusOK, "", "bulk update of the ams1 device")
		after, err := f.e.store.Get(context.Background(), f.in)
		require.NoError(t, err)
		assert.Equal(t, in.Version+1, after.Version, "the ams1 device was written once, by the allowed request")
	},
	"GET /v1/devices/{id}": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/devices/"+f.in, nil), http.StatusOK, "", "get the ams1 device")
		wantStatus(t, f.call(t, role, "GET", "/v1/devices/"+f.out, nil), http.StatusNotFound, "not_found", "get the fra1 device")
		wantStatus(t, f.call(t, role, "GET", "/v1/devices/"+f.bare, nil), http.StatusNotFound, "not_found", "get the device without a site")
	},
	"PATCH /v1/devices/{id}": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "PATCH", "/v1/devices/"+f.out, map[string]any{"name": "taken over"}), http.StatusNotFound, "not_found", "patch the fra1 device")
		wantStatus(t, f.call(t, role, "PATCH", "/v1/devices/"+f.in, map[string]any{"site": "fra1"}), http.StatusForbidden, "forbidden", "move the ams1 device to fra1")
		wantStatus(t, f.call(t, role, "PATCH", "/v1/devices/"+f.in, map[string]any{"name": "renamed"}), http.StatusOK, "", "patch the ams1 device")
		d, err := f.e.store.Get(context.Background(), f.out)
		require.NoError(t, err)
		assert.Equal(t, "router "+f.out, d.Name, "the fra1 device changed")
		d, err = f.e.store.Get(context.Background(), f.in)
		require.NoError(t, err)
		assert.Equal(t, "ams1", d.Site, "the ams1 device moved")
	},
	"DELETE /v1/devices/{id}": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "DELETE", "/v1/devices/"+f.out, nil), http.StatusNotFound, "not_found", "delete the fra1 device")
		_, err := f.e.store.Get(context.Background(), f.out)
		assert.NoError(t, err, "the fra1 device was deleted")
		r := f.e.do(f.e.tokens[auth.Admin], "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("ams-del", nil)))
		require.Equal(t, http.StatusCreated, r.Status, "seed ams-del: %s", r.Body)
		wantStatus(t, f.call(t, role, "DELETE", "/v1/devices/ams-del", nil), http.StatusNoContent, "", "delete an ams1 device")
	},
	"GET /v1/devices/{id}/runs": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/devices/"+f.in+"/runs", nil)
		wantStatus(t, r, http.StatusOK, "", "runs of the ams1 device")
		assert.Equal(t, []string{f.runIn}, listedIDs(t, r, "id"), "runs of the ams1 device")
		wantStatus(t, f.call(t, role, "GET", "/v1/devices/"+f.out+"/runs", nil), http.StatusNotFound, "not_found", "runs of the fra1 device")
	},
	"POST /v1/runs": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "POST", "/v1/runs", map[string]any{"device_id": f.in, "command": "show clock"}), http.StatusAccepted, "", "run on the ams1 device")
		wantStatus(t, f.call(t, role, "POST", "/v1/runs", map[string]any{"device_id": f.out, "command": "show clock"}),
			http.StatusUnprocessableEntity, "unknown_devices", "run on the fra1 device")
	},
	"GET /v1/runs/{id}": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.runIn, nil), http.StatusOK, "", "the ams1 run")
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.jobIn+"."+f.in, nil), http.StatusOK, "", "the ams1 device's queued run")
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.runOut, nil), http.StatusNotFound, "not_found", "the fra1 run")
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.jobOut+"."+f.out, nil), http.StatusNotFound, "not_found", "the fra1 device's queued run")
	},
	"GET /v1/runs/{id}/output": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/runs/"+f.runIn+"/output", nil)
		wantStatus(t, r, http.StatusOK, "", "the ams1 run's output")
		assert.Equal(t, "ams1 output\n", string(r.Body), "the ams1 run's output")
		r = f.call(t, role, "GET", "/v1/runs/"+f.runOut+"/output", nil)
		wantStatus(t, r, http.StatusNotFound, "not_found", "the fra1 run's output")
		assert.NotContains(t, string(r.Body), outOfScopeOutput, "the fra1 run's output leaked")
	},
	"GET /v1/bulk": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/bulk?limit=200", nil)
		wantStatus(t, r, http.StatusOK, "", "job list")
		ids := listedIDs(t, r, "job_id")
		assert.Contains(t, ids, f.jobIn, "the list holds the ams1 job")
		assert.NotContains(t, ids, f.jobOut, "the list holds the fra1 job")
		assert.NotContains(t, ids, f.jobMixed, "the list holds the job spanning ams1 and fra1")
	},
	"POST /v1/bulk": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "POST", "/v1/bulk", map[string]any{"command": "show clock", "device_ids": []string{f.in, f.out}})
		wantStatus(t, r, http.StatusUnprocessableEntity, "unknown_devices", "bulk on ams1 and fra1")
		var body struct {
			UnknownIDs []string `json:"unknown_ids"`
		}
		r.JSON(t, &body)
		assert.Equal(t, []string{f.out}, body.UnknownIDs, "the refusal lists the out-of-scope device")
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk", map[string]any{"command": "show clock", "device_ids": []string{f.in}}),
			http.StatusAccepted, "", "bulk on ams1")
	},
	"GET /v1/bulk/{job_id}":         jobRead(""),
	"GET /v1/bulk/{job_id}/devices": jobRead("/devices"),
	"GET /v1/bulk/{job_id}/events":  jobRead("/events"),
	"POST /v1/bulk/{job_id}/cancel": func(t *testing.T, f *scopeFixture, role auth.Role) {
		for _, j := range []string{f.jobOut, f.jobMixed} {
			wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+j+"/cancel", nil), http.StatusNotFound, "not_found", "cancel an out-of-scope job")
			r := f.e.do(f.e.tokens[auth.Admin], "GET", "/v1/bulk/"+j, "", nil)
			require.Equal(t, http.StatusOK, r.Status, "read job %s: %s", j, r.Body)
			var job struct {
				CancelRequested bool `json:"cancel_requested"`
			}
			r.JSON(t, &job)
			assert.False(t, job.CancelRequested, "the out-of-scope job %s was cancelled", j)
		}
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+f.jobIn+"/cancel", nil), http.StatusForbidden, "forbidden", "cancel the admin's ams1 job")
		r := f.call(t, role, "POST", "/v1/bulk", map[string]any{"command": "show clock", "device_ids": []string{f.in}})
		wantStatus(t, r, http.StatusAccepted, "", "bulk on ams1")
		var acc struct {
			JobID string `json:"job_id"`
		}
		r.JSON(t, &acc)
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+acc.JobID+"/cancel", nil), http.StatusAccepted, "", "cancel its own ams1 job")
	},
	"POST /v1/policy/check": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "POST", "/v1/policy/check", map[string]any{"command": "show clock", "device_ids": []string{f.in}})
		wantStatus(t, r, http.StatusOK, "", "check on the ams1 device")
		r = f.call(t, role, "POST", "/v1/policy/check", map[string]any{"command": "reload", "device_ids": []string{f.in, f.out}})
		wantStatus(t, r, http.StatusUnprocessableEntity, "unknown_devices", "check on ams1 and fra1")
		assert.NotContains(t, string(r.Body), "rule", "the check of an out-of-scope device names a policy rule")
	},
	"GET /v1/whoami": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/whoami", nil)
		wantStatus(t, r, http.StatusOK, "", "whoami")
		var me apiwire.WhoAmI
		r.JSON(t, &me)
		assert.Empty(t, me.Role, "a scoped caller holds no role everywhere")
		assert.Equal(t, []apiwire.RoleGrant{{Role: string(role), Sites: []string{"ams1"}}}, me.Roles, "the scoped caller's roles")
	},
	"POST /v1/devices/{id}/host-key/accept": globalOnly,
	"GET /v1/audit":                         globalOnly,
	"GET /v1/policy":                        globalOnly,
	"PUT /v1/policy":                        globalOnly,
	"PUT /v1/platforms/{name}/filters":      globalOnly,
	"GET /v1/platforms": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/platforms", nil), http.StatusOK, "", "platforms (no site's data)")
	},
	"GET /v1/devices/{id}/history": func(t *testing.T, f *scopeFixture, role auth.Role) {
		r := f.call(t, role, "GET", "/v1/devices/"+f.in+"/history?command=show+running-config", nil)
		wantStatus(t, r, http.StatusOK, "", "history of the ams1 device")
		assert.Equal(t, []string{f.runIn}, listedIDs(t, r, "id"), "history of the ams1 device")
		wantStatus(t, f.call(t, role, "GET", "/v1/devices/"+f.out+"/history?command=show+running-config", nil), http.StatusNotFound, "not_found", "history of the fra1 device")
	},
	"GET /v1/runs/{id}/diff": func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.runIn+"/diff?against="+f.runIn, nil), http.StatusOK, "", "the ams1 run against itself")
		r := f.call(t, role, "GET", "/v1/runs/"+f.runIn+"/diff?against="+f.runOut, nil)
		wantStatus(t, r, http.StatusNotFound, "not_found", "the ams1 run against the fra1 run")
		assert.NotContains(t, string(r.Body), outOfScopeOutput, "the fra1 run's output leaked")
		wantStatus(t, f.call(t, role, "GET", "/v1/runs/"+f.runOut+"/diff?against="+f.runIn, nil), http.StatusNotFound, "not_found", "the fra1 run")
	},
	"GET /v1/retention":                   globalOnly,
	"POST /v1/retention/purge":            globalOnly,
	"GET /v1/credential-profiles":         globalOnly,
	"POST /v1/credential-profiles":        globalOnly,
	"GET /v1/credential-profiles/{id}":    globalOnly,
	"PATCH /v1/credential-profiles/{id}":  globalOnly,
	"DELETE /v1/credential-profiles/{id}": globalOnly,
}

// jobRead is the row of a route reading one job (suffix after its id).
func jobRead(suffix string) scopeCase {
	return func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/bulk/"+f.jobIn+suffix, nil), http.StatusOK, "", "the ams1 job")
		wantStatus(t, f.call(t, role, "GET", "/v1/bulk/"+f.jobOut+suffix, nil), http.StatusNotFound, "not_found", "the fra1 job")
		wantStatus(t, f.call(t, role, "GET", "/v1/bulk/"+f.jobMixed+suffix, nil), http.StatusNotFound, "not_found", "the job spanning ams1 and fra1")
	}
}

// TestScopedRoleOnEveryRoute holds every authenticated operation of openapi.yaml to scope. The
// caller is operator:ams1 (admin:ams1 on the routes that need admin, which operator:ams1 is
// refused): it reaches ams1's devices, runs and jobs and nothing else.
func TestScopedRoleOnEveryRoute(t *testing.T) {
	t.Parallel()
	f := newScopeFixture(t)
	var ops []operation
	for _, o := range documentedOperations(t) {
		if o.role == rolePublic {
			continue
		}
		ops = append(ops, o)
		_, ok := scopeCases[o.String()]
		assert.True(t, ok, "%s has no row in scopeCases: say how it honours scoped roles", o)
	}
	for name := range scopeCases {
		assert.True(t, slices.ContainsFunc(ops, func(o operation) bool { return o.String() == name }), "scopeCases has a row for %s, which openapi.yaml does not document", name)
	}
	for _, o := range ops {
		c, ok := scopeCases[o.String()]
		if !ok {
			continue
		}
		t.Run(o.String(), func(t *testing.T) {
			ctype, body := o.body()
			if c == nil {
				require.Equal(t, scopeGlobal, o.scope, "%s has the globalOnly row but x-netauto-scope %s", o, o.scope)
				r := f.e.forT(t).do(f.tokens[auth.Admin], o.method, o.target(), ctype, body)
				wantStatus(t, r, http.StatusForbidden, "forbidden", o.String()+" as admin:ams1")
				return
			}
			require.Equal(t, scopeSite, o.scope, "%s is global in openapi.yaml: its row must be globalOnly", o)
			role := auth.Role(o.role)
			if role == auth.Admin {
				r := f.e.forT(t).do(f.tokens[auth.Operator], o.method, o.target(), ctype, body)
				wantStatus(t, r, http.StatusForbidden, "forbidden", o.String()+" as operator:ams1")
			} else {
				role = auth.Operator
			}
			c(t, f, role)
		})
	}
}
