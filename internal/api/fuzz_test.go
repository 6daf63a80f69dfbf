package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// memStore is an in-memory device.Store and device.SecretStore for fuzzing the handlers and the
// domain without DynamoDB.
type memStore struct {
	mu      sync.Mutex
	devices map[string]device.Device
	secrets map[string]device.Credential
}

func newMemStore() *memStore {
	return &memStore{devices: map[string]device.Device{}, secrets: map[string]device.Credential{}}
}

func (m *memStore) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.devices)
	clear(m.secrets)
}

func (m *memStore) Create(_ context.Context, d device.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[d.ID]; ok {
		return device.ErrExists
	}
	m.devices[d.ID] = d
	return nil
}

func (m *memStore) Get(_ context.Context, id string) (device.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return device.Device{}, device.ErrNotFound
	}
	return d, nil
}

func (m *memStore) Update(_ context.Context, d device.Device, prev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.devices[d.ID]
	if !ok {
		return device.ErrNotFound
	}
	if cur.Version != prev {
		return device.ErrConflict
	}
	m.devices[d.ID] = d
	return nil
}

func (m *memStore) Delete(_ context.Context, id string, version int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.devices[id]
	if !ok {
		return device.ErrNotFound
	}
	if cur.Version != version {
		return device.ErrConflict
	}
	delete(m.devices, id)
	return nil
}

func (m *memStore) List(_ context.Context, _ device.Filter, p device.Page) ([]device.Device, string, error) {
	if p.Cursor != "" {
		return nil, "", fault.ErrBadCursor
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []device.Device
	for _, d := range m.devices {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out[:min(len(out), p.Limit)], "", nil
}

func (m *memStore) Lookup(ctx context.Context, ids []string) (map[string]device.Device, error) {
	return m.GetMany(ctx, ids)
}

func (m *memStore) GetMany(_ context.Context, ids []string) (map[string]device.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := map[string]device.Device{}
	for _, id := range ids {
		if d, ok := m.devices[id]; ok {
			found[id] = d
		}
	}
	return found, nil
}

func (m *memStore) Existing(_ context.Context, ids []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := map[string]bool{}
	for _, id := range ids {
		if _, ok := m.devices[id]; ok {
			found[id] = true
		}
	}
	return found, nil
}

func (m *memStore) Put(_ context.Context, name string, c device.Credential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets[name] = c
	return nil
}

func (m *memStore) secret(name string) (device.Credential, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.secrets[name]
	return c, ok
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

// memSecrets is memStore seen as a device.SecretStore (its Get and Delete differ from the
// device store's).
type memSecrets struct{ *memStore }

func (s memSecrets) Get(_ context.Context, name string) (device.Credential, error) {
	if c, ok := s.secret(name); ok {
		return c, nil
	}
	return device.Credential{}, device.ErrNotFound
}

func (s memSecrets) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, name)
	return nil
}

// openProfiles lets every device use every credential profile: the fuzz targets check decoding
// and validation, the credential profile tests check the profiles' rules.
type openProfiles struct{}

func (openProfiles) Rule(context.Context, string) (device.ProfileRule, error) { return allowAll{}, nil }

func (openProfiles) Credential(context.Context, string, device.Device) (device.Credential, error) {
	return device.Credential{}, device.ErrNotFound
}

type allowAll struct{}

func (allowAll) Allows(device.Device) error { return nil }

// fuzzAPI is the real handler over an in-memory inventory; one per fuzz target, its requests
// serialised so each input starts from a known inventory.
type fuzzAPI struct {
	mu    sync.Mutex
	store *memStore
	srv   http.Handler
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	store := newMemStore()
	inv, err := device.NewInventory(store, memSecrets{store})
	require.NoError(f, err, "new inventory")
	inv.UseProfiles(openProfiles{})
	// Fuzzing reaches only the device routes; the other services are never called.
	srv, err := api.New(api.Options{
		Devices: inv, Bulk: struct{ api.Bulk }{}, Jobs: struct{ api.Jobs }{}, Runs: struct{ api.Runs }{},
		Logger: discardLogger(),
	})
	require.NoError(f, err, "new api")
	return &fuzzAPI{store: store, srv: srv}
}

// serve sends one request as an admin and returns the recorded answer.
func (a *fuzzAPI) serve(method, target, contentType string, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req = req.WithContext(auth.WithIdentity(req.Context(), auth.Identity{Subject: "fuzz", Role: auth.Admin}))
	rec := httptest.NewRecorder()
	a.srv.ServeHTTP(rec, req)
	return rec
}

// checkAnswer fails on a 5xx and on a 4xx whose body is not the error shape with a code.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Less(t, rec.Code, 500, "answer %s", truncate(rec.Body.Bytes()))
	if rec.Code < 400 {
		return
	}
	var eb struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb), "status %d with a body that is not JSON: %s", rec.Code, truncate(rec.Body.Bytes()))
	require.NotNil(t, eb.Error, "status %d with a body that is not the error shape: %s", rec.Code, truncate(rec.Body.Bytes()))
	require.NotEmpty(t, eb.Error.Code, "status %d without an error code: %s", rec.Code, truncate(rec.Body.Bytes()))
	require.NotEmpty(t, eb.Error.Message, "status %d without an error message: %s", rec.Code, truncate(rec.Body.Bytes()))
}

// oracleInput is the documented create body (apiwire.DeviceInput, held to DeviceInput in
// openapi.yaml), decoded independently of the handler; the port is read as a pointer to tell an
// explicit 0 from none.
type oracleInput struct {
	apiwire.DeviceInput
	Port *int `json:"port"`
}

// oracleCreate says whether body is a device the API must create: exactly one JSON object of
// known fields, no explicit port 0, and a device and credential that validate.
func oracleCreate(body []byte) (device.Input, bool) {
	var in oracleInput
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return device.Input{}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return device.Input{}, false
	}
	if in.Port != nil && *in.Port == 0 {
		return device.Input{}, false
	}
	port := 0
	if in.Port != nil {
		port = *in.Port
	}
	di := device.Input{
		Device: device.Device{ID: in.ID, Name: in.Name, Host: in.Host, Port: port, Platform: in.Platform, Username: in.Username,
			AuthMethod: device.AuthMethod(in.AuthMethod), Tags: in.Tags, Site: in.Site, HostKey: in.HostKey, TrustOnFirstUse: in.TrustOnFirstUse,
			LegacyAlgorithms: in.LegacyAlgorithms, CredentialProfile: in.CredentialProfile},
		Credential: device.Credential{Password: in.Password, PrivateKey: in.PrivateKey, Passphrase: in.Passphrase},
	}
	di.Normalize()
	return di, di.Validate() == nil
}

const maxCreateBody = 64 << 10

func FuzzCreateDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"r1","name":"Router 1","host":"10.0.0.1","username":"ops","password":"pw"}`,
		`{"id":"r2","name":"R2","host":"2001:db8::1","port":2222,"platform":"juniper_junos","username":"netops","tags":{"role":"core","pod":"7"},"site":"ams1"}`,
		`{"id":"r3","name":"R3","host":"core.example.net","username":"ops","auth_method":"private-key","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"}`,
		`{"id":"r4","name":"R4","host":"10.0.0.4","username":"ops","credential_profile":"lab","host_key":"` + goodHostKey + `","trust_on_first_use":true}`,
		`{"id":"r5","name":"R5","host":"10.0.0.5","username":"ops","port":0}`,
		`{"id":"r6","name":"a\u202eb","host":"10.0.0.1","username":"ops"}`,
		`{"id":"r7","name":"n","host":"10.0.0.1","username":"ops","port":"22"}`,
		`{"id":"r8","name":"n","host":"10.0.0.1","username":"ops","tags":["a"]}`,
		`{"id":"r9","name":"n","host":"10.0.0.1","username":"ops","colour":"red"}`,
		`{"id":"r1","name":"n","host":"10.0.0.1","username":"ops"}{"id":"r2"}`,
		`{"ID":"r10","NAME":"n","Host":"h","USERNAME":"u"}`,
		`{"id":"r11","name":"n","host":"10.0.0.1","username":"ops","port":1e400}`,
		`{"id":"r12","name":"n","host":"10.0.0.1","username":"ops","port":-1}`,
		`{"id":"r13","name":"n","host":"10.0.0.1","username":"ops","host_key":"ssh-ed25519 nope"}`,
		`{"id":"r14","name":"\u0000","host":"10.0.0.1","username":"ops"}`,
		`{"id":"r15","name":"n","host":"10.0.0.1","username":"ops","tags":{"a":"b","a":"c"}}`,
		`{"id":"r16","name":"n","host":"10.0.0.1","username":"ops","tags":null,"port":null}`,
		`null`, `[]`, `""`, `0`, `{}`, ``, `{`, `{"id":`, "\xff\xfe{}", strings.Repeat(`[`, 5000),
	} {
		f.Add([]byte(seed))
	}
	a := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.store.reset()
		rec := a.serve("POST", "/v1/devices", "application/json", body)
		checkAnswer(t, rec)
		want, valid := oracleCreate(body)
		if len(body) > maxCreateBody {
			valid = false
		}
		switch {
		case rec.Code == http.StatusCreated && !valid:
			require.Fail(t, "created a device from input that does not validate", "%q", truncate(body))
		case rec.Code != http.StatusCreated && valid:
			require.Fail(t, "refused a valid device", "%d %s: %q", rec.Code, truncate(rec.Body.Bytes()), truncate(body))
		case rec.Code == http.StatusCreated:
			got, err := a.store.Get(context.Background(), want.ID)
			require.NoError(t, err, "answered 201 but stored nothing")
			require.NoError(t, got.Validate(), "stored a device that does not validate")
			require.Equal(t, want.Name, got.Name, "stored %+v, sent %+v: name", got, want.Device)
			require.Equal(t, want.Host, got.Host, "stored %+v, sent %+v: host", got, want.Device)
			require.Equal(t, want.Port, got.Port, "stored %+v, sent %+v: port", got, want.Device)
			require.Equal(t, !want.Credential.Empty(), got.HasCredential, "stored %+v, sent %+v: has_credential", got, want.Device)
			// Compared without printing: a failure must not show the credentials.
			c, _ := a.store.secret(device.SecretName(want.ID))
			sent := want.Credential
			if got.HasCredential || got.HasEnableSecret {
				sent.For = device.Address(got) // the address it is stored for
			}
			require.True(t, c == sent, "the stored credential differs from the one sent")
			require.False(t, bytes.Contains(rec.Body.Bytes(), []byte(`"password":`)), "the answer holds a password field")
		default:
			require.Zero(t, a.store.count(), "refused with %d but stored devices", rec.Code)
		}
	})
}

func FuzzImportCSV(f *testing.F) {
	for _, seed := range []struct {
		csv    string
		perRow bool
	}{
		{"id,name,host,port,platform,username,tags,site,password\nc1,Core 1,core1.example.net,2222,arista_eos,ops,role=core;pod=7,ams1,pw1\nc2,Core 2,2001:db8::2,,juniper_junos,ops,,ams1,pw2\n", false},
		{"id,name,host,username\nc1,n,10.0.0.1,ops\nc1,n,10.0.0.2,ops\n", true},
		{"\ufeffID, Name ,HOST,username,trust_on_first_use,legacy_algorithms\r\nc1,n,10.0.0.1,ops,true,0\r\n", false},
		{"id,name,host,username,auth_method,private_key\nc1,n,10.0.0.1,ops,private-key,\"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\"\n", false},
		{"id,name,host,username,port\nc1,n,10.0.0.1,ops,0\n", false},
		{"id,name,host,username,colour\nc1,n,10.0.0.1,ops,red\n", false},
		{"id,name,,username\n", false},
		{"id,id\n", false},
		{"id,name,host,username\nc1,\"unterminated,10.0.0.1,ops\n", false},
		{"id,name,host,username\nc1,a\"b,10.0.0.1,ops\n", true},
		{"id,name,host,username\nc1,n,10.0.0.1\n", false},
		{"id,name,host,username,tags\nc1,n,10.0.0.1,ops,=;;==\n", true},
		{"id,name,host,username,tags\nc1,n,10.0.0.1,ops,a=1;a=2\n", false},
		{"id,name,host,username\nc1,\x00\x1b[2J,10.0.0.1,\xff\n", true},
		{"id,name,host,username\nc1,n,10.0.0.1,ops\n\n\n", false},
		{"", false}, {"\n", false}, {",", false}, {"\"", false}, {"id", false}, {"id\nx\n", true},
	} {
		f.Add([]byte(seed.csv), seed.perRow)
	}
	a := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte, perRow bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.store.reset()
		target := "/v1/devices/import"
		if perRow {
			target += "?mode=per-row"
		}
		rec := a.serve("POST", target, "text/csv", body)
		checkAnswer(t, rec)
		stored := a.store.count()
		if rec.Code >= 400 {
			require.Zero(t, stored, "refused with %d but stored devices", rec.Code)
			if perRow {
				require.NotEqual(t, http.StatusUnprocessableEntity, rec.Code, "per-row import answered 422")
			}
			return
		}
		var res device.ImportResult
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res), "%d body is not an import result", rec.Code)
		require.Equal(t, stored, res.Created, "devices the result says were created against those the store holds")
		if rec.Code == http.StatusCreated {
			require.Len(t, res.Rows, res.Created, "201: rows against rows created")
		}
		if !perRow {
			require.Equal(t, http.StatusCreated, rec.Code, "atomic import's status")
		}
		for _, row := range res.Rows {
			switch row.Status {
			case device.RowCreated:
			case device.RowInvalid, device.RowExists:
				require.NotEmpty(t, row.Errors, "row %d %s without an error", row.Row, row.Status)
				require.NotEmpty(t, row.Errors[0].Field, "row %d %s without an error naming a field: %+v", row.Row, row.Status, row.Errors)
				continue
			default:
				require.Fail(t, "a row status that is none of created, invalid, exists", "row %d has status %s", row.Row, row.Status)
			}
			d, err := a.store.Get(context.Background(), row.ID)
			require.NoError(t, err, "row %d created but %s not stored", row.Row, row.ID)
			require.NoError(t, d.Validate(), "stored %s does not validate", row.ID)
		}
	})
}

func FuzzPatchDecode(f *testing.F) {
	for _, seed := range []struct{ body, ifMatch string }{
		{`{"site":"fra2","tags":{"role":"edge"},"version":1}`, ""},
		{`{"name":"Router 1b","port":2222}`, `"1"`},
		{`{"password":"rotated"}`, `"1"`},
		{`{"password":""}`, ""},
		{`{"credential_profile":"lab"}`, ""},
		{`{"credential_profile":"lab","password":"x"}`, ""},
		{`{"auth_method":"private-key"}`, ""},
		{`{"auth_method":"private-key","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nA\n-----END OPENSSH PRIVATE KEY-----"}`, ""},
		{`{"host_key":"` + goodHostKey + `"}`, ""},
		{`{"host_key":"ssh-ed25519 nope"}`, ""},
		{`{"port":0}`, ""}, {`{"port":-1}`, ""}, {`{"port":"22"}`, ""},
		{`{"name":null,"tags":null}`, ""},
		{`{"tags":{"🔥":"x"}}`, ""},
		{`{"name":"a\u202eb"}`, ""},
		{`{"version":2}`, ""}, {`{"version":1}`, `"2"`}, {`{}`, `W/"1"`}, {`{}`, `*`},
		{`{"id":"other"}`, ""}, {`{}{}`, ""}, {``, ""}, {`[]`, ""}, {`null`, ""},
	} {
		f.Add([]byte(seed.body), seed.ifMatch)
	}
	a := newFuzzAPI(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte, ifMatch string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.store.reset()
		orig := device.Input{Device: device.Device{ID: "r1", Name: "Router 1", Host: "10.0.0.1", Username: "ops",
			Tags: map[string]string{"role": "core"}}, Credential: device.Credential{Password: "pw"}}
		inv, err := device.NewInventory(a.store, memSecrets{a.store})
		require.NoError(t, err)
		inv.UseProfiles(openProfiles{})
		before, err := inv.Create(ctx, orig)
		require.NoError(t, err)
		var header []string
		if ifMatch != "" {
			if strings.ContainsAny(ifMatch, "\r\n\x00") {
				return // not a header value a client can send
			}
			header = []string{"If-Match", ifMatch}
		}
		rec := a.serve("PATCH", "/v1/devices/r1", "application/json", body, header...)
		checkAnswer(t, rec)
		after, err := a.store.Get(ctx, "r1")
		require.NoError(t, err, "the device is gone after %d", rec.Code)
		if rec.Code != http.StatusOK {
			require.Equal(t, before.Version, after.Version, "refused with %d but the device changed: %+v", rec.Code, after)
			require.Equal(t, before.Name, after.Name, "refused with %d but the device changed: %+v", rec.Code, after)
			require.Equal(t, before.HasCredential, after.HasCredential, "refused with %d but the device changed: %+v", rec.Code, after)
			c, _ := a.store.secret(device.SecretName("r1"))
			require.True(t, c.Password == "pw", "refused with %d but the credential changed", rec.Code)
			return
		}
		require.Equal(t, before.Version+1, after.Version, "200: the device's version")
		require.NoError(t, after.Validate(), "patch stored a device that does not validate (body %q)", truncate(body))
		require.False(t, after.HasCredential && after.CredentialProfile != "", "patch left a device with both its own credential and a profile")
		var got device.Device
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), "answer %s is not a device", truncate(rec.Body.Bytes()))
		require.Equal(t, after.Version, got.Version, "answer %s is not the stored device", truncate(rec.Body.Bytes()))
		require.False(t, bytes.Contains(rec.Body.Bytes(), []byte(`"password":`)), "the answer holds a password field")
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
