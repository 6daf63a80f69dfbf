package secrets

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/webhook"
)

// fakeSecretsManager speaks the Secrets Manager JSON 1.1 protocol (X-Amz-Target dispatch) for
// the operations the store calls, keeping secrets in memory. Like Secrets Manager, it refuses to
// read, write, create or delete again a secret pending deletion (InvalidRequestException) until
// it is restored, and it rejects a deletion without a recovery window.
type fakeSecretsManager struct {
	mu      sync.Mutex
	secrets map[string]string
	deleted map[string]bool
	// refuse makes every call on these secret IDs fail with InvalidRequestException although
	// they are not pending deletion (another reason, such as a KMS key being disabled).
	refuse  map[string]bool
	calls   []string
	deletes []map[string]any
	// decryptFails makes BatchGetSecretValue report DecryptionFailure for these secret IDs.
	decryptFails map[string]bool
	// batchSizes are the number of ids of each BatchGetSecretValue call.
	batchSizes []int
	// throttleBatch makes every BatchGetSecretValue call fail with ThrottlingException.
	throttleBatch bool
}

func (f *fakeSecretsManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		http.Error(w, "bad content type", 400)
		return
	}
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, target)
	fail := func(typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	notFound := func() { fail("ResourceNotFoundException", "Secrets Manager can't find the specified secret.") }
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(v)
	}
	if target == "BatchGetSecretValue" {
		if f.throttleBatch {
			fail("ThrottlingException", "Rate exceeded")
			return
		}
		f.batchGet(in, reply, fail)
		return
	}
	id, _ := in["SecretId"].(string)
	if name, ok := in["Name"].(string); ok {
		id = name
	}
	if f.refuse[id] && target != "DescribeSecret" {
		fail("InvalidRequestException", "You can't perform this operation on the secret because the KMS key is disabled.")
		return
	}
	if f.deleted[id] && target != "DescribeSecret" && target != "RestoreSecret" {
		fail("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
		return
	}
	_, exists := f.secrets[id]
	switch target {
	case "CreateSecret":
		if exists {
			fail("ResourceExistsException", "The operation failed because the secret already exists.")
			return
		}
		f.secrets[id] = in["SecretString"].(string)
		reply(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:0:secret:" + id, "Name": id})
	case "PutSecretValue":
		if !exists {
			notFound()
			return
		}
		f.secrets[id] = in["SecretString"].(string)
		reply(map[string]any{"Name": id})
	case "GetSecretValue":
		if !exists {
			notFound()
			return
		}
		reply(map[string]any{"Name": id, "SecretString": f.secrets[id]})
	case "DescribeSecret":
		if !exists {
			notFound()
			return
		}
		out := map[string]any{"Name": id}
		if f.deleted[id] {
			out["DeletedDate"] = 1.7e9
		}
		reply(out)
	case "RestoreSecret":
		if !exists {
			notFound()
			return
		}
		delete(f.deleted, id)
		reply(map[string]any{"Name": id})
	case "DeleteSecret":
		f.deletes = append(f.deletes, in)
		if !exists {
			notFound()
			return
		}
		days, _ := in["RecoveryWindowInDays"].(float64)
		if in["ForceDeleteWithoutRecovery"] == true || days < 7 || days > 30 {
			fail("InvalidParameterException", "a recovery window of 7 to 30 days is required")
			return
		}
		f.deleted[id] = true
		reply(map[string]any{"Name": id, "DeletionDate": 1.7e9})
	default:
		http.Error(w, "unknown target "+target, 400)
	}
}

// batchGet answers BatchGetSecretValue for a SecretIdList as Secrets Manager does: at most 20
// ids, each secret's value or an error of its own (ResourceNotFoundException for a missing
// secret, InvalidRequestException for one pending deletion or refused). Names only: the store
// never asks by ARN or filter.
func (f *fakeSecretsManager) batchGet(in map[string]any, reply func(any), fail func(typ, msg string)) {
	ids, _ := in["SecretIdList"].([]any)
	if len(ids) == 0 || len(ids) > 20 || in["Filters"] != nil {
		fail("InvalidParameterException", "SecretIdList must hold 1 to 20 ids")
		return
	}
	f.batchSizes = append(f.batchSizes, len(ids))
	values, errs := []map[string]any{}, []map[string]any{}
	for _, v := range ids {
		id := v.(string)
		secret, exists := f.secrets[id]
		switch {
		case f.refuse[id]:
			errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "InvalidRequestException", "Message": "the KMS key is disabled"})
		case f.deleted[id]:
			errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "InvalidRequestException", "Message": "marked for deletion"})
		case f.decryptFails[id]:
			errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "DecryptionFailure", "Message": "the KMS key cannot decrypt the secret"})
		case !exists:
			errs = append(errs, map[string]any{"SecretId": id, "ErrorCode": "ResourceNotFoundException", "Message": "Secrets Manager can't find the specified secret."})
		default:
			values = append(values, map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:0:secret:" + id, "Name": id, "SecretString": secret})
		}
	}
	reply(map[string]any{"SecretValues": values, "Errors": errs})
}

func newSMStore(t testing.TB, prefix string) (*SecretsManagerStore, *fakeSecretsManager) {
	t.Helper()
	fake := &fakeSecretsManager{secrets: map[string]string{}, deleted: map[string]bool{}, refuse: map[string]bool{}, decryptFails: map[string]bool{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	store, err := NewSecretsManagerStore(client, prefix)
	require.NoError(t, err)
	return store, fake
}

func newFileStore(t testing.TB) *FileStore {
	t.Helper()
	s, err := NewFileStore(t.TempDir() + "/secrets")
	require.NoError(t, err, "new file store")
	return s
}

func TestStores(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) device.SecretStore
	}{
		{"file", func(t *testing.T) device.SecretStore { return newFileStore(t) }},
		{"secrets manager", func(t *testing.T) device.SecretStore { s, _ := newSMStore(t, "netauto/test-stack/"); return s }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s := st.store(t)
			secret := device.Credential{Password: "hunter2-very-secret", Passphrase: "pp"}
			_, err := s.Get(ctx, "devices/r1")
			require.ErrorIs(t, err, device.ErrNotFound, "Get of a missing secret")
			require.NoError(t, s.Put(ctx, "devices/r1", secret), "Put")
			got, err := s.Get(ctx, "devices/r1")
			require.NoError(t, err, "Get")
			// Compared without printing: a failure must not show the secret.
			require.True(t, got == secret, "Get returned another credential than the one stored")
			secret.Password = "rotated-secret"
			require.NoError(t, s.Put(ctx, "devices/r1", secret), "Put of a new value")
			got, _ = s.Get(ctx, "devices/r1")
			require.Equal(t, "rotated-secret", got.Password, "Put did not replace the secret")
			require.NoError(t, s.Delete(ctx, "devices/r1"), "Delete")
			require.NoError(t, s.Delete(ctx, "devices/r1"), "second Delete")
			_, err = s.Get(ctx, "devices/r1")
			require.ErrorIs(t, err, device.ErrNotFound, "Get after Delete")
			for _, bad := range []string{"../etc/passwd", "", "a//b", "devices/ r1"} {
				err := s.Put(ctx, bad, secret)
				if assert.Error(t, err, "Put(%q) accepted a bad name", bad) {
					assert.NotContains(t, err.Error(), secret.Password, "error of Put(%q) leaks the secret", bad)
				}
			}
		})
	}
}

func TestSecretsManagerUsesPrefixAndCreatesOnce(t *testing.T) {
	s, fake := newSMStore(t, "netauto/netauto-dev/")
	ctx := context.Background()
	require.NoError(t, s.Put(ctx, "profiles/lab", device.Credential{Password: "x"}), "first Put")
	require.NoError(t, s.Put(ctx, "profiles/lab", device.Credential{Password: "y"}), "second Put")
	assert.Contains(t, fake.secrets, "netauto/netauto-dev/profiles/lab", "secrets are named under the stack's prefix")
	assert.Len(t, fake.secrets, 1, "secrets")
	assert.Equal(t, "PutSecretValue,CreateSecret,PutSecretValue", strings.Join(fake.calls, ","), "Secrets Manager calls")
}

// TestSecretsManagerDeletion covers deletion with a recovery window: a deleted secret reads as
// missing, deleting it again is not an error, and storing it again restores it.
func TestSecretsManagerDeletion(t *testing.T) {
	const name, id = "devices/r1", "netauto/s1/devices/r1"
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager)
	}{
		{"delete schedules deletion with a recovery window", func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager) {
			require.NoError(t, s.Delete(ctx, name))
			require.Len(t, fake.deletes, 1)
			assert.Equal(t, map[string]any{"SecretId": id, "RecoveryWindowInDays": float64(RecoveryWindowDays)}, fake.deletes[0])
			assert.True(t, fake.deleted[id], "the secret is pending deletion, not gone")
		}},
		{"a secret pending deletion reads as missing", func(t *testing.T, s *SecretsManagerStore, _ *fakeSecretsManager) {
			require.NoError(t, s.Delete(ctx, name))
			_, err := s.Get(ctx, name)
			assert.ErrorIs(t, err, device.ErrNotFound)
		}},
		{"deleting twice is not an error", func(t *testing.T, s *SecretsManagerStore, _ *fakeSecretsManager) {
			require.NoError(t, s.Delete(ctx, name))
			assert.NoError(t, s.Delete(ctx, name))
		}},
		{"storing again restores the secret with the new value", func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager) {
			require.NoError(t, s.Delete(ctx, name))
			require.NoError(t, s.Put(ctx, name, device.Credential{Password: "new"}))
			got, err := s.Get(ctx, name)
			require.NoError(t, err)
			assert.Equal(t, "new", got.Password)
			assert.Contains(t, fake.calls, "RestoreSecret")
		}},
		{"another refusal is an error on store", func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager) {
			fake.refuse[id] = true
			err := s.Put(ctx, name, device.Credential{Password: "new"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "store secret "+id)
			assert.NotContains(t, fake.calls, "RestoreSecret")
		}},
		{"another refusal is an error on read", func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager) {
			fake.refuse[id] = true
			_, err := s.Get(ctx, name)
			require.Error(t, err)
			assert.NotErrorIs(t, err, device.ErrNotFound)
		}},
		{"another refusal is an error on delete", func(t *testing.T, s *SecretsManagerStore, fake *fakeSecretsManager) {
			fake.refuse[id] = true
			err := s.Delete(ctx, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "delete secret "+id)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, fake := newSMStore(t, "netauto/s1/")
			require.NoError(t, s.Put(ctx, name, device.Credential{Password: "old"}))
			fake.calls = nil
			tc.run(t, s, fake)
		})
	}
}

func TestNewSecretsManagerStorePrefix(t *testing.T) {
	client := secretsmanager.New(secretsmanager.Options{Region: "us-east-1"})
	tests := []struct {
		name, prefix string
		ok           bool
	}{
		{"stack scoped", "netauto/netauto-dev/", true},
		{"default", "netauto/", true},
		{"empty", "", false},
		{"no trailing slash", "netauto/netauto-dev", false},
		{"empty segment", "netauto//", false},
		{"wildcard", "netauto/*/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSecretsManagerStore(client, tc.prefix)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "prefix")
		})
	}
}

func TestFileStorePermissions(t *testing.T) {
	s := newFileStore(t)
	require.NoError(t, s.Put(context.Background(), "devices/r1", device.Credential{Password: "p"}), "Put")
	fi, err := os.Stat(s.path("devices/r1"))
	require.NoError(t, err, "stat the secret file")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "secret file mode")
	di, err := os.Stat(s.dir)
	require.NoError(t, err, "stat the secret folder")
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "secret folder mode")
}

func TestWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	fs, err := NewFileStore(t.TempDir())
	require.NoError(t, err)
	w, err := NewWebhooks(fs)
	require.NoError(t, err)
	_, err = w.GetWebhookSecret(ctx, "h1")
	require.ErrorIs(t, err, webhook.ErrNotFound)
	want := webhook.Secret{URL: "https://hooks.example.com/T0/B0/x", SigningSecret: "whsec_1"}
	require.NoError(t, w.PutWebhookSecret(ctx, "h1", want))
	got, err := w.GetWebhookSecret(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, w.DeleteWebhookSecret(ctx, "h1"))
	_, err = w.GetWebhookSecret(ctx, "h1")
	assert.ErrorIs(t, err, webhook.ErrNotFound)
}
