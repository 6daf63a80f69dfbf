package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// badCase is one hostile or malformed request and the answer it must get.
type badCase struct {
	name   string
	method string
	path   string
	ctype  string
	body   []byte
	header []string
	status int
	// field is what the answer must name: error.field, or for a 422 import a field of one of the
	// rejected rows' errors.
	field string
}

// A real host key (ed25519) for cases that need a valid one next to a bad one.
const goodHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

// b64 encodes a forged page cursor.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func badCreateCases(t *testing.T) []badCase {
	t.Helper()
	create := func(name string, overrides map[string]any, status int, field string) badCase {
		return badCase{name: "create/" + name, method: "POST", path: "/v1/devices", ctype: "application/json",
			body: mustJSON(t, deviceJSON("x1", overrides)), status: status, field: field}
	}
	raw := func(name, body string, status int, field string) badCase {
		return badCase{name: "create/" + name, method: "POST", path: "/v1/devices", ctype: "application/json",
			body: []byte(body), status: status, field: field}
	}
	manyTags := map[string]string{}
	for i := range 10000 {
		manyTags[fmt.Sprintf("k%05d", i)] = "v"
	}
	tooManyTags := map[string]string{}
	for i := range device.MaxTags + 1 {
		tooManyTags[fmt.Sprintf("k%02d", i)] = "v"
	}
	valid := string(mustJSON(t, deviceJSON("x1", nil)))
	return []badCase{
		// wrong types
		create("port as string", map[string]any{"port": "22"}, 400, "port"),
		create("port as float", map[string]any{"port": 22.5}, 400, "port"),
		create("port beyond int64", map[string]any{"port": 1e30}, 400, "port"),
		create("tags as array", map[string]any{"tags": []string{"core"}}, 400, "tags"),
		create("tag value as object", map[string]any{"tags": map[string]any{"role": map[string]int{"a": 1}}}, 400, "tags"),
		create("platform as number", map[string]any{"platform": 7}, 400, "platform"),
		create("name as bool", map[string]any{"name": true}, 400, "name"),
		create("trust_on_first_use as string", map[string]any{"trust_on_first_use": "yes"}, 400, "trust_on_first_use"),
		create("id as array", map[string]any{"id": []string{"x1"}}, 400, "id"),
		// missing fields
		create("missing id", map[string]any{"id": nil}, 400, "id"),
		create("missing name", map[string]any{"name": nil}, 400, "name"),
		create("missing host", map[string]any{"host": nil}, 400, "host"),
		create("missing username", map[string]any{"username": nil}, 400, "username"),
		create("blank name", map[string]any{"name": "   "}, 400, "name"),
		raw("null body", "null", 400, "id"),
		raw("empty object", "{}", 400, "id"),
		// huge strings
		create("1 MB name", map[string]any{"name": strings.Repeat("n", 1<<20)}, 413, "body"),
		create("129-char name", map[string]any{"name": strings.Repeat("n", device.MaxNameLen+1)}, 400, "name"),
		create("300-char host", map[string]any{"host": strings.Repeat("h", 300)}, 400, "host"),
		create("10k tags", map[string]any{"tags": manyTags}, 413, "body"),
		create("33 tags", map[string]any{"tags": tooManyTags}, 400, "tags"),
		create("65-char id", map[string]any{"id": strings.Repeat("i", device.MaxIDLen+1)}, 400, "id"),
		create("2 KB password", map[string]any{"password": strings.Repeat("p", 2048)}, 400, "password"),
		create("257-char tag value", map[string]any{"tags": map[string]string{"role": strings.Repeat("v", 257)}}, 400, "tags.role"),
		// unicode
		create("RTL override in name", map[string]any{"name": "core\u202Egnp.exe"}, 400, "name"),
		create("RTL isolate in site", map[string]any{"site": "ams\u20661"}, 400, "site"),
		create("zero-width space in id", map[string]any{"id": "x\u200b1"}, 400, "id"),
		create("zero-width space in name", map[string]any{"name": "core\u200b1"}, 400, "name"),
		create("BOM in username", map[string]any{"username": "\ufeffadmin"}, 400, "username"),
		create("emoji in tag key", map[string]any{"tags": map[string]string{"🔥": "hot"}}, 400, "tags"),
		create("line separator in name", map[string]any{"name": "a\u2028b"}, 400, "name"),
		create("fullwidth digits in host", map[string]any{"host": "１０.0.0.1"}, 400, "host"),
		// control characters
		create("NUL in name", map[string]any{"name": "core\x00one"}, 400, "name"),
		create("CRLF in name", map[string]any{"name": "core\r\nX-Injected: 1"}, 400, "name"),
		create("CRLF in username", map[string]any{"username": "ops\r\nroot"}, 400, "username"),
		create("space in username", map[string]any{"username": "net ops"}, 400, "username"),
		create("ESC sequence in name", map[string]any{"name": "\x1b[31mred\x1b[0m"}, 400, "name"),
		create("ESC in tag value", map[string]any{"tags": map[string]string{"role": "\x1b]0;pwned\x07"}}, 400, "tags.role"),
		create("tab in host", map[string]any{"host": "10.0.0.1\t"}, 400, "host"),
		create("DEL in site", map[string]any{"site": "ams\x7f"}, 400, "site"),
		// ports
		create("port zero", map[string]any{"port": 0}, 400, "port"),
		create("negative port", map[string]any{"port": -22}, 400, "port"),
		create("port 65536", map[string]any{"port": 65536}, 400, "port"),
		create("huge port", map[string]any{"port": int64(1) << 40}, 400, "port"),
		// hosts, ids, enums
		create("host with scheme", map[string]any{"host": "ssh://10.0.0.1"}, 400, "host"),
		create("host with port", map[string]any{"host": "10.0.0.1:22"}, 400, "host"),
		create("host with path", map[string]any{"host": "router/../etc"}, 400, "host"),
		create("id with slash", map[string]any{"id": "a/b"}, 400, "id"),
		create("id with dot-dot", map[string]any{"id": ".."}, 400, "id"),
		create("id starting with dash", map[string]any{"id": "-x1"}, 400, "id"),
		create("tag key with dot", map[string]any{"tags": map[string]string{"a.b": "c"}}, 400, "tags"),
		create("unknown platform", map[string]any{"platform": "ios"}, 400, "platform"),
		create("unknown auth_method", map[string]any{"auth_method": "telnet"}, 400, "auth_method"),
		create("bad credential_profile", map[string]any{"credential_profile": "../etc", "password": nil}, 400, "credential_profile"),
		// credentials and host keys
		create("password with private-key auth", map[string]any{"auth_method": "private-key"}, 400, "password"),
		create("private key with password auth", map[string]any{"auth_method": "password", "password": nil,
			"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"}, 400, "private_key"),
		create("private key that is no key", map[string]any{"auth_method": "private-key", "password": nil, "private_key": "hunter2"}, 400, "private_key"),
		create("credential and profile", map[string]any{"credential_profile": "lab"}, 400, "credential_profile"),
		create("host_key not a key", map[string]any{"host_key": "not a key"}, 400, "host_key"),
		create("host_key bad base64", map[string]any{"host_key": "ssh-ed25519 !!!not-base64!!!"}, 400, "host_key"),
		create("host_key type mismatch", map[string]any{"host_key": "ssh-rsa " + strings.Fields(goodHostKey)[1]}, 400, "host_key"),
		create("host_key two keys", map[string]any{"host_key": goodHostKey + "\n" + goodHostKey}, 400, "host_key"),
		create("host_key with options", map[string]any{"host_key": `command="sh" ` + goodHostKey}, 400, "host_key"),
		// JSON shape
		raw("unknown field", strings.TrimSuffix(valid, "}")+`,"colour":"red"}`, 400, "colour"),
		raw("has_credential is not input", strings.TrimSuffix(valid, "}")+`,"has_credential":true}`, 400, "has_credential"),
		raw("trailing JSON value", valid+valid, 400, "body"),
		raw("trailing garbage", valid+" x", 400, "body"),
		raw("empty body", "", 400, "body"),
		raw("whitespace body", " \n\t ", 400, "body"),
		raw("invalid JSON", `{"id": "x1",`, 400, "body"),
		raw("single quotes", `{'id': 'x1'}`, 400, "body"),
		raw("array body", "["+valid+"]", 400, "body"),
		raw("string body", `"x1"`, 400, "body"),
		raw("deep nesting", strings.Repeat("[", 10000)+strings.Repeat("]", 10000), 400, "body"),
		raw("oversize body", `{"id":"x1","name":"`+strings.Repeat("a", 70<<10)+`"}`, 413, "body"),
	}
}

func badPatchCases(t *testing.T) []badCase {
	t.Helper()
	patch := func(name, path, body string, status int, field string, header ...string) badCase {
		return badCase{name: "patch/" + name, method: "PATCH", path: path, ctype: "application/json",
			body: []byte(body), status: status, field: field, header: header}
	}
	const p = "/v1/devices/seed"
	return []badCase{
		patch("port as string", p, `{"port":"22"}`, 400, "port"),
		patch("port zero", p, `{"port":0}`, 400, "port"),
		patch("negative port", p, `{"port":-1}`, 400, "port"),
		patch("port 70000", p, `{"port":70000}`, 400, "port"),
		patch("tags as array", p, `{"tags":["a"]}`, 400, "tags"),
		patch("platform as number", p, `{"platform":1}`, 400, "platform"),
		patch("version as string", p, `{"version":"1"}`, 400, "version"),
		patch("empty name", p, `{"name":""}`, 400, "name"),
		patch("RTL override in name", p, `{"name":"a\u202eb"}`, 400, "name"),
		patch("CRLF in username", p, `{"username":"a\r\nb"}`, 400, "username"),
		patch("NUL in site", p, `{"site":"a\u0000"}`, 400, "site"),
		patch("emoji tag key", p, `{"tags":{"😀":"x"}}`, 400, "tags"),
		patch("bad host_key", p, `{"host_key":"ssh-ed25519 nope"}`, 400, "host_key"),
		patch("unknown platform", p, `{"platform":"cisco"}`, 400, "platform"),
		patch("id is not patchable", p, `{"id":"other"}`, 400, "id"),
		patch("unknown field", p, `{"colour":"red"}`, 400, "colour"),
		patch("password with private-key auth", "/v1/devices/pk1", `{"password":"hunter2"}`, 400, "password"),
		patch("switch to private-key with a password", p, `{"auth_method":"private-key","password":"x"}`, 400, "password"),
		patch("password with a profile", "/v1/devices/prof1", `{"password":"hunter2"}`, 400, "credential_profile"),
		patch("empty body", p, ``, 400, "body"),
		patch("trailing JSON", p, `{"site":"a"}{"site":"b"}`, 400, "body"),
		patch("invalid JSON", p, `{"site":`, 400, "body"),
		patch("array body", p, `[{"site":"a"}]`, 400, "body"),
		patch("oversize body", p, `{"site":"`+strings.Repeat("s", 70<<10)+`"}`, 413, "body"),
		patch("If-Match not a version", p, `{"site":"a"}`, 400, "If-Match", "If-Match", `"abc"`),
		patch("If-Match and version differ", p, `{"site":"a","version":1}`, 400, "version", "If-Match", `"2"`),
		patch("bad id in path", "/v1/devices/bad%20id", `{"site":"a"}`, 400, "id"),
	}
}

func badPathCases() []badCase {
	var out []badCase
	for _, id := range []struct{ name, path string }{
		{"space", "a%20b"},
		{"leading dash", "-x"},
		{"65 chars", strings.Repeat("a", device.MaxIDLen+1)},
		{"RTL override", "%E2%80%AEabc"},
		{"zero-width space", "a%E2%80%8Bb"},
		{"NUL", "a%00b"},
		{"encoded slash", "a%2Fb"},
		{"percent sign", "a%25b"},
		{"emoji", "%F0%9F%94%A5"},
		{"quote", "a%22b"},
	} {
		out = append(out,
			badCase{name: "get/" + id.name, method: "GET", path: "/v1/devices/" + id.path, status: 400, field: "id"},
			badCase{name: "delete/" + id.name, method: "DELETE", path: "/v1/devices/" + id.path, status: 400, field: "id"})
	}
	return out
}

func badListCases() []badCase {
	list := func(name, query string, field string) badCase {
		return badCase{name: "list/" + name, method: "GET", path: "/v1/devices?" + query, status: 400, field: field}
	}
	return []badCase{
		list("limit zero", "limit=0", "limit"),
		list("limit negative", "limit=-1", "limit"),
		list("limit not a number", "limit=ten", "limit"),
		list("limit float", "limit=1.5", "limit"),
		list("limit exponent", "limit=1e2", "limit"),
		list("limit too large", "limit=1001", "limit"),
		list("limit overflows", "limit=99999999999999999999", "limit"),
		list("limit twice", "limit=1&limit=2", "limit"),
		list("tag with emoji key", "tag=%F0%9F%98%80", "tag"),
		list("tag with empty key", "tag=%3Dcore", "tag"),
		list("tag key with dot", "tag=a.b", "tag"),
		list("tag key with space", "tag=a%20b%3Dc", "tag"),
		list("tag value with control char", "tag=role%3D%1B", "tag"),
		list("unknown platform", "platform=ios", "platform"),
		list("site with NUL", "site=a%00b", "site"),
		list("unknown parameter", "colour=red", "colour"),
		list("cursor not base64", "cursor=!!!", "cursor"),
		list("cursor base64 of garbage", "cursor="+b64("garbage"), "cursor"),
		list("cursor with other attribute", "cursor="+b64(`{"id":"seed"}`), "cursor"),
		list("cursor with extra attribute", "cursor="+b64(`{"pk":"DEV#seed","sk":"DEV","gsi":"x"}`), "cursor"),
		list("cursor with partial key", "cursor="+b64(`{"pk":"DEV#seed"}`), "cursor"),
		list("cursor with empty key values", "cursor="+b64(`{"pk":"","sk":""}`), "cursor"),
		list("cursor with numbers", "cursor="+b64(`{"pk":1,"sk":2}`), "cursor"),
		list("cursor JSON array", "cursor="+b64(`["DEV#seed","DEV"]`), "cursor"),
		list("cursor too long", "cursor="+strings.Repeat("A", 4096), "cursor"),
	}
}

func badImportCases(t *testing.T) []badCase {
	t.Helper()
	js := func(name, query string, body []byte, status int, field string) badCase {
		return badCase{name: "import-json/" + name, method: "POST", path: "/v1/devices/import" + query, ctype: "application/json",
			body: body, status: status, field: field}
	}
	csvCase := func(name, body string, status int, field string) badCase {
		return badCase{name: "import-csv/" + name, method: "POST", path: "/v1/devices/import", ctype: "text/csv",
			body: []byte(body), status: status, field: field}
	}
	row := func(id string, overrides map[string]any) map[string]any { return deviceJSON(id, overrides) }
	rows := func(r ...map[string]any) []byte { return mustJSON(t, r) }
	tooMany := make([]map[string]any, device.MaxImportRows+1)
	for i := range tooMany {
		tooMany[i] = row(fmt.Sprintf("m%05d", i), nil)
	}
	const header = "id,name,host,username\n"
	var manyCSV strings.Builder
	manyCSV.WriteString(header)
	for i := range device.MaxImportRows + 1 {
		fmt.Fprintf(&manyCSV, "c%05d,n,10.0.0.1,ops\n", i)
	}
	valid := rows(row("x1", nil))
	return []badCase{
		js("object instead of array", "", mustJSON(t, row("x1", nil)), 400, "rows"),
		js("empty array", "", []byte(`[]`), 400, "rows"),
		js("null", "", []byte(`null`), 400, "rows"),
		js("row is a number", "", []byte(`[1]`), 400, "rows[1]"),
		js("port as string in row 2", "", []byte(`[`+string(mustJSON(t, row("x1", nil)))+`,{"id":"x2","port":"22"}]`), 400, "rows[2].port"),
		js("tags as array in row 1", "", rows(row("x1", map[string]any{"tags": []string{"a"}})), 400, "rows[1].tags"),
		js("unknown field in row 1", "", []byte(`[{"id":"x1","colour":"red"}]`), 400, "rows[1].colour"),
		js("port zero in row 1", "", rows(row("x1", map[string]any{"port": 0})), 400, "rows[1].port"),
		js("duplicate ids", "", rows(row("x1", nil), row("x2", nil), row("x1", nil)), 422, "id"),
		js("id that exists", "", rows(row("x1", nil), row("seed", nil)), 422, "id"),
		js("invalid port in one row", "", rows(row("x1", nil), row("x2", map[string]any{"port": 70000})), 422, "port"),
		js("missing host in one row", "", rows(row("x1", nil), row("x2", map[string]any{"host": nil})), 422, "host"),
		js("RTL override in one row", "", rows(row("x1", map[string]any{"name": "a\u202eb"})), 422, "name"),
		js("NUL in one row", "", rows(row("x1", map[string]any{"username": "a\x00"})), 422, "username"),
		js("too many rows", "", mustJSON(t, tooMany), 413, "rows"),
		js("invalid mode", "?mode=best-effort", valid, 400, "mode"),
		js("mode twice", "?mode=atomic&mode=per-row", valid, 400, "mode"),
		js("unknown parameter", "?dry_run=1", valid, 400, "dry_run"),
		js("trailing JSON", "", append(append([]byte{}, valid...), valid...), 400, "body"),
		js("invalid JSON", "", []byte(`[{"id":`), 400, "body"),
		js("empty body", "", nil, 400, "body"),
		// Past 10 MB API Gateway itself answers 413 (the local gateway likewise), before the
		// function runs, so no field can be named.
		js("oversize body", "", []byte(`[{"name":"`+strings.Repeat("a", 10<<20)+`"}]`), 413, ""),
		{name: "import/wrong content type", method: "POST", path: "/v1/devices/import", ctype: "text/plain", body: valid, status: 415, field: "Content-Type"},
		{name: "import/xml content type", method: "POST", path: "/v1/devices/import", ctype: "application/xml", body: []byte("<devices/>"), status: 415, field: "Content-Type"},
		{name: "import/malformed content type", method: "POST", path: "/v1/devices/import", ctype: "application/json;;=", body: valid, status: 415, field: "Content-Type"},
		csvCase("unknown column", "id,name,host,username,colour\nx1,n,10.0.0.1,ops,red\n", 400, "colour"),
		csvCase("empty column name", "id,name,,username\nx1,n,10.0.0.1,ops\n", 400, "header"),
		csvCase("duplicate column", "id,name,host,username,id\nx1,n,10.0.0.1,ops,x2\n", 400, "id"),
		csvCase("malformed quotes", header+"x1,\"unterminated,10.0.0.1,ops\n", 400, "rows[1]"),
		csvCase("bare quote in field", header+"x1,na\"me,10.0.0.1,ops\n", 400, "rows[1]"),
		csvCase("wrong field count", header+"x1,n,10.0.0.1,ops\nx2,n,10.0.0.2\n", 400, "rows[2]"),
		csvCase("port not a number", "id,name,host,username,port\nx1,n,10.0.0.1,ops,ssh\n", 400, "rows[1].port"),
		csvCase("port zero", "id,name,host,username,port\nx1,n,10.0.0.1,ops,0\n", 400, "rows[1].port"),
		csvCase("port out of range", "id,name,host,username,port\nx1,n,10.0.0.1,ops,65536\n", 422, "port"),
		csvCase("tags without =", "id,name,host,username,tags\nx1,n,10.0.0.1,ops,core\n", 400, "rows[1].tags"),
		csvCase("emoji tag key", "id,name,host,username,tags\nx1,n,10.0.0.1,ops,🔥=hot\n", 422, "tags"),
		csvCase("bool not a bool", "id,name,host,username,trust_on_first_use\nx1,n,10.0.0.1,ops,yes please\n", 400, "rows[1].trust_on_first_use"),
		csvCase("empty", "", 400, "rows"),
		csvCase("header only", header, 400, "rows"),
		csvCase("missing host column", "id,name,username\nx1,n,ops\n", 422, "host"),
		csvCase("duplicate ids", header+"x1,n,10.0.0.1,ops\nx1,n,10.0.0.2,ops\n", 422, "id"),
		csvCase("NUL in name", header+"x1,a\x00b,10.0.0.1,ops\n", 422, "name"),
		csvCase("ESC in name", header+"x1,\x1b[2Jn,10.0.0.1,ops\n", 422, "name"),
		csvCase("quoted CRLF in username", header+"x1,n,10.0.0.1,\"ops\r\nroot\"\n", 422, "username"),
		csvCase("invalid UTF-8 in name", header+"x1,\xff\xfe,10.0.0.1,ops\n", 422, "name"),
		csvCase("password with private-key auth", "id,name,host,username,auth_method,password\nx1,n,10.0.0.1,ops,private-key,pw\n", 422, "password"),
		csvCase("too many rows", manyCSV.String(), 413, "rows"),
	}
}

// TestBadInput sends every malformed, oversized and hostile request and checks it is refused
// with a 4xx that names the problem and that nothing was written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	for _, d := range []map[string]any{
		deviceJSON("seed", nil),
		deviceJSON("pk1", map[string]any{"auth_method": "private-key", "password": nil,
			"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"}),
		deviceJSON("prof1", map[string]any{"password": nil, "credential_profile": "lab"}),
	} {
		r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, d))
		require.Equal(t, http.StatusCreated, r.Status, "seed %s: %s", d["id"], r.Body)
	}
	before := e.snapshot()
	var cases []badCase
	cases = append(cases, badCreateCases(t)...)
	cases = append(cases, badPatchCases(t)...)
	cases = append(cases, badPathCases()...)
	cases = append(cases, badListCases()...)
	cases = append(cases, badImportCases(t)...)
	seen := map[string]bool{}
	for _, tc := range cases {
		require.False(t, seen[tc.name], "two cases named %q", tc.name)
		seen[tc.name] = true
	}
	t.Logf("%d bad-input cases", len(cases))

	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e := e.forT(t)
				r := e.do(admin, tc.method, tc.path, tc.ctype, tc.body, tc.header...)
				// Every case is refused, so the inventory must look as it did before any of them.
				defer e.assertUnchanged(before, "x1", "x2", "m00000", "c00000")
				assert.Equal(t, tc.status, r.Status, "%s %s: %s", tc.method, truncateStr(tc.path), truncate(r.Body))
				var body struct {
					errorBody
					Result device.ImportResult `json:"result"`
				}
				r.JSON(t, &body)
				assert.NotEmpty(t, body.Error.Code, "answer %s has no error code", truncate(r.Body))
				assert.NotEmpty(t, body.Error.Message, "answer %s has no error message", truncate(r.Body))
				if r.Status != http.StatusUnprocessableEntity {
					assert.Equal(t, tc.field, body.Error.Field, "error.field (%s)", body.Error.Message)
					return
				}
				assert.Equal(t, "rows", body.Error.Field, "422 error.field")
				named := false
				for _, row := range body.Result.Rows {
					for _, fe := range row.Errors {
						named = named || fe.Field == tc.field
					}
				}
				assert.True(t, named, "no rejected row names %q: %+v", tc.field, body.Result.Rows)
			})
		}
	})
	e.assertUnchanged(before, "x1", "x2", "m00000", "c00000")
	for _, id := range []string{"seed", "prof1", "pk1"} {
		d, err := e.store.Get(t.Context(), id)
		if assert.NoError(t, err, "device %s", id) {
			assert.EqualValues(t, 1, d.Version, "device %s's version", id)
		}
	}
	c, err := e.secrets.Get(t.Context(), device.SecretName("pk1"))
	if assert.NoError(t, err, "pk1's credential") {
		assert.Empty(t, c.Password, "pk1's credential changed: it has a password")
	}
	e.assertNoSecrets("hunter2", "s3cret-x1", "s3cret-x2")
}

func truncateStr(s string) string { return truncate([]byte(s)) }
