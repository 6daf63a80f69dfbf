package secrets

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/netauto/netauto/internal/device"
)

// fakeSecretsManager speaks the Secrets Manager JSON 1.1 protocol (X-Amz-Target dispatch) for
// the four operations the store calls, keeping secrets in memory.
type fakeSecretsManager struct {
	mu      sync.Mutex
	secrets map[string]string
	calls   []string
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
	notFound := func() {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`))
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch target {
	case "CreateSecret":
		name := in["Name"].(string)
		f.secrets[name] = in["SecretString"].(string)
		reply(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:0:secret:" + name, "Name": name})
	case "PutSecretValue":
		id := in["SecretId"].(string)
		if _, ok := f.secrets[id]; !ok {
			notFound()
			return
		}
		f.secrets[id] = in["SecretString"].(string)
		reply(map[string]any{"Name": id})
	case "GetSecretValue":
		id := in["SecretId"].(string)
		v, ok := f.secrets[id]
		if !ok {
			notFound()
			return
		}
		reply(map[string]any{"Name": id, "SecretString": v})
	case "DeleteSecret":
		id := in["SecretId"].(string)
		if _, ok := f.secrets[id]; !ok {
			notFound()
			return
		}
		if in["ForceDeleteWithoutRecovery"] != true {
			http.Error(w, "expected a forced delete", 400)
			return
		}
		delete(f.secrets, id)
		reply(map[string]any{"Name": id})
	default:
		http.Error(w, "unknown target "+target, 400)
	}
}

func newSMStore(t *testing.T) (*SecretsManagerStore, *fakeSecretsManager) {
	t.Helper()
	fake := &fakeSecretsManager{secrets: map[string]string{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	store, err := NewSecretsManagerStore(client, DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return store, fake
}

func newFileStore(t *testing.T) *FileStore {
	t.Helper()
	s, err := NewFileStore(t.TempDir() + "/secrets")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStores(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) device.SecretStore
	}{
		{"file", func(t *testing.T) device.SecretStore { return newFileStore(t) }},
		{"secrets manager", func(t *testing.T) device.SecretStore { s, _ := newSMStore(t); return s }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s := st.store(t)
			secret := device.Credential{Password: "hunter2-very-secret", Passphrase: "pp"}
			if _, err := s.Get(ctx, "devices/r1"); !errors.Is(err, device.ErrNotFound) {
				t.Fatalf("Get of a missing secret = %v, want ErrNotFound", err)
			}
			if err := s.Put(ctx, "devices/r1", secret); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, "devices/r1")
			if err != nil || got != secret {
				t.Fatalf("Get = %v, %v; want the stored credential", got.Password == secret.Password, err)
			}
			secret.Password = "rotated-secret"
			if err := s.Put(ctx, "devices/r1", secret); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Get(ctx, "devices/r1"); got.Password != "rotated-secret" {
				t.Fatal("Put did not replace the secret")
			}
			if err := s.Delete(ctx, "devices/r1"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "devices/r1"); err != nil {
				t.Fatalf("second Delete = %v, want nil", err)
			}
			if _, err := s.Get(ctx, "devices/r1"); !errors.Is(err, device.ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
			for _, bad := range []string{"../etc/passwd", "", "a//b", "devices/ r1"} {
				err := s.Put(ctx, bad, secret)
				if err == nil {
					t.Errorf("Put(%q) accepted a bad name", bad)
				} else if strings.Contains(err.Error(), secret.Password) {
					t.Errorf("error leaks the secret: %v", err)
				}
			}
		})
	}
}

func TestSecretsManagerUsesPrefixAndCreatesOnce(t *testing.T) {
	s, fake := newSMStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "profiles/lab", device.Credential{Password: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "profiles/lab", device.Credential{Password: "y"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.secrets["netauto/profiles/lab"]; !ok {
		t.Fatalf("secrets stored under %v, want netauto/profiles/lab", fake.secrets)
	}
	want := "PutSecretValue,CreateSecret,PutSecretValue"
	if got := strings.Join(fake.calls, ","); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
}

func TestFileStorePermissions(t *testing.T) {
	s := newFileStore(t)
	if err := s.Put(context.Background(), "devices/r1", device.Credential{Password: "p"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.path("devices/r1"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(s.dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("secret folder mode %v, want 0700", di.Mode().Perm())
	}
}
