// Package secrets stores device credentials: in AWS Secrets Manager (one secret per name under a
// prefix) and, for local development, in files with 0600 permissions under the ignored state
// folder. Both implement device.SecretStore. Secret values never appear in their errors.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/netauto/netauto/internal/device"
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

func checkName(name string) error {
	if len(name) > 256 || !namePattern.MatchString(name) {
		return fmt.Errorf("secret name %q is not allowed", name)
	}
	return nil
}

// FileStore keeps each secret as a JSON file (mode 0600) in a folder (mode 0700).
type FileStore struct {
	dir string
}

// NewFileStore returns a store in dir, creating it when missing.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create secret folder %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict secret folder %s: %w", dir, err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(name string) string {
	return filepath.Join(s.dir, strings.ReplaceAll(name, "/", "__")+".json")
}

// Put writes the secret atomically.
func (s *FileStore) Put(_ context.Context, name string, c device.Credential) error {
	if err := checkName(name); err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write secret %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write secret %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), s.path(name)); err != nil {
		return fmt.Errorf("write secret %s: %w", name, err)
	}
	return nil
}

// Get reads a secret; device.ErrNotFound when there is none.
func (s *FileStore) Get(_ context.Context, name string) (device.Credential, error) {
	if err := checkName(name); err != nil {
		return device.Credential{}, err
	}
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return device.Credential{}, fmt.Errorf("secret %s: %w", name, device.ErrNotFound)
	}
	if err != nil {
		return device.Credential{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	var c device.Credential
	if err := json.Unmarshal(data, &c); err != nil {
		return device.Credential{}, fmt.Errorf("secret %s is not valid JSON", name)
	}
	return c, nil
}

// GetMany reads each of names (device.SecretBatchReader): a missing secret is absent, one that
// cannot be read is in failed.
func (s *FileStore) GetMany(ctx context.Context, names []string) (map[string]device.Credential, map[string]error, error) {
	found, failed := map[string]device.Credential{}, map[string]error{}
	getEach(ctx, s.Get, names, found, failed)
	return found, failed, nil
}

// getEach reads names one by one with get into found (a missing secret is left out) and failed.
func getEach(ctx context.Context, get func(context.Context, string) (device.Credential, error), names []string, found map[string]device.Credential, failed map[string]error) {
	for _, name := range names {
		c, err := get(ctx, name)
		switch {
		case errors.Is(err, device.ErrNotFound):
		case err != nil:
			failed[name] = err
		default:
			found[name] = c
		}
	}
}

// Delete removes a secret; a missing one is not an error.
func (s *FileStore) Delete(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	return nil
}

// Purge removes a secret at once; a missing one is not an error. The file store keeps no
// deleted secrets, so it is Delete.
func (s *FileStore) Purge(ctx context.Context, name string) error { return s.Delete(ctx, name) }

// SecretsManagerAPI is the part of the Secrets Manager client the store uses.
type SecretsManagerAPI interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(ctx context.Context, in *secretsmanager.BatchGetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	RestoreSecret(ctx context.Context, in *secretsmanager.RestoreSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error)
}

// RecoveryWindowDays is how long a deleted credential can still be restored (aws secretsmanager
// restore-secret) before Secrets Manager erases it: the shortest window it allows.
const RecoveryWindowDays = 7

var prefixPattern = regexp.MustCompile(`^([A-Za-z0-9_+=.@-]+/)+$`)

// SecretsManagerStore keeps each credential as one Secrets Manager secret (a JSON string) named
// prefix + name. Deleting schedules the secret's deletion with a recovery window; storing a
// credential under a name pending deletion restores the secret and stores a new version.
type SecretsManagerStore struct {
	client SecretsManagerAPI
	prefix string
}

// NewSecretsManagerStore returns a store whose secret names start with prefix, such as
// "netauto/<stack>/" (config.Config.SecretsPrefix): name segments, each ending in a slash.
func NewSecretsManagerStore(client SecretsManagerAPI, prefix string) (*SecretsManagerStore, error) {
	if client == nil {
		return nil, errors.New("new secrets manager store: no client")
	}
	if !prefixPattern.MatchString(prefix) {
		return nil, fmt.Errorf("new secrets manager store: prefix %q must be name segments (letters, digits, _+=.@-) each ending in a slash", prefix)
	}
	return &SecretsManagerStore{client: client, prefix: prefix}, nil
}

func notFound(err error) bool {
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// pendingDeletion reports whether err is Secrets Manager refusing to work on secret id because
// it is scheduled for deletion (an InvalidRequestException, also used for other refusals, so
// the secret's DeletedDate decides).
func (s *SecretsManagerStore) pendingDeletion(ctx context.Context, id string, err error) bool {
	var ir *smtypes.InvalidRequestException
	if !errors.As(err, &ir) {
		return false
	}
	out, derr := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	return derr == nil && out.DeletedDate != nil
}

// Put creates the secret or stores a new version of it, restoring it first when it is pending
// deletion.
func (s *SecretsManagerStore) Put(ctx context.Context, name string, c device.Credential) error {
	if err := checkName(name); err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", name, err)
	}
	id := s.prefix + name
	put := func() error {
		_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(data))})
		return err
	}
	err = put()
	switch {
	case notFound(err):
		_, err = s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(id), SecretString: aws.String(string(data)),
			Description: aws.String("NetAuto device credential"),
			Tags:        []smtypes.Tag{{Key: aws.String("app"), Value: aws.String("netauto")}},
		})
		var exists *smtypes.ResourceExistsException
		if errors.As(err, &exists) {
			err = put() // created by a concurrent Put since ours found none
		}
	case s.pendingDeletion(ctx, id, err):
		if _, err = s.client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(id)}); err == nil {
			err = put()
		}
	}
	if err != nil {
		return fmt.Errorf("store secret %s: %w", id, err)
	}
	return nil
}

// Get reads the current version of a secret; device.ErrNotFound when there is none or it is
// pending deletion.
func (s *SecretsManagerStore) Get(ctx context.Context, name string) (device.Credential, error) {
	if err := checkName(name); err != nil {
		return device.Credential{}, err
	}
	id := s.prefix + name
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if notFound(err) || s.pendingDeletion(ctx, id, err) {
		return device.Credential{}, fmt.Errorf("secret %s: %w", id, device.ErrNotFound)
	}
	if err != nil {
		return device.Credential{}, fmt.Errorf("read secret %s: %w", id, err)
	}
	var c device.Credential
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &c); err != nil {
		return device.Credential{}, fmt.Errorf("secret %s is not valid JSON", id)
	}
	return c, nil
}

// BatchGetMax is how many secrets one BatchGetSecretValue call reads at most (Secrets Manager's
// limit for a SecretIdList).
const BatchGetMax = 20

// noRetry makes a call fail at its first error. A batch read is an optimisation: when it is
// throttled (BatchGetSecretValue allows 100 calls a second per Region, GetSecretValue 10,000) its
// secrets are read one by one at once rather than after the SDK's backoff.
func noRetry(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 }

// GetMany reads names' current versions with BatchGetSecretValue, BatchGetMax at a time
// (device.SecretBatchReader). A secret Secrets Manager does not find is absent. A secret it
// refuses with InvalidRequestException (as it does for one pending deletion, and for other
// reasons) is read again with Get, which tells the two apart; any other refusal of one secret
// (such as DecryptionFailure or AccessDeniedException) is in failed. A failed call (throttled,
// say) is not retried: err says so and found holds what the calls before it read.
func (s *SecretsManagerStore) GetMany(ctx context.Context, names []string) (map[string]device.Credential, map[string]error, error) {
	found, failed := map[string]device.Credential{}, map[string]error{}
	byID := map[string]string{}
	var ids []string
	for _, name := range names {
		if err := checkName(name); err != nil {
			failed[name] = err
			continue
		}
		if _, dup := byID[s.prefix+name]; !dup {
			byID[s.prefix+name] = name
			ids = append(ids, s.prefix+name)
		}
	}
	var again []string
	for start := 0; start < len(ids); start += BatchGetMax {
		in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids[start:min(start+BatchGetMax, len(ids))]}
		for {
			out, err := s.client.BatchGetSecretValue(ctx, in, noRetry)
			if err != nil {
				return found, failed, fmt.Errorf("read %d secrets: %w", len(in.SecretIdList), err)
			}
			for _, v := range out.SecretValues {
				name, ok := byID[aws.ToString(v.Name)]
				if !ok {
					continue
				}
				var c device.Credential
				if err := json.Unmarshal([]byte(aws.ToString(v.SecretString)), &c); err != nil {
					failed[name] = fmt.Errorf("secret %s is not valid JSON", s.prefix+name)
					continue
				}
				found[name] = c
			}
			for _, e := range out.Errors {
				name, ok := byID[aws.ToString(e.SecretId)]
				if !ok {
					continue
				}
				switch code := aws.ToString(e.ErrorCode); code {
				case "ResourceNotFoundException":
				case "InvalidRequestException":
					again = append(again, name)
				default:
					failed[name] = fmt.Errorf("read secret %s: %s: %s", s.prefix+name, code, aws.ToString(e.Message))
				}
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	getEach(ctx, s.Get, again, found, failed)
	return found, failed, nil
}

// Delete schedules a secret's deletion after RecoveryWindowDays, never at once, so a credential
// deleted by mistake can be restored; a missing secret, or one already pending deletion, is not
// an error.
func (s *SecretsManagerStore) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	id := s.prefix + name
	_, err := s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(id), RecoveryWindowInDays: aws.Int64(RecoveryWindowDays)})
	if err != nil && !notFound(err) && !s.pendingDeletion(ctx, id, err) {
		return fmt.Errorf("delete secret %s: %w", id, err)
	}
	return nil
}

// Purge deletes a secret at once, without a recovery window (ForceDeleteWithoutRecovery): for
// secrets that have served, such as a finished job's prompt answers, which nobody should be able
// to restore. A missing secret is not an error.
func (s *SecretsManagerStore) Purge(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	id := s.prefix + name
	_, err := s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(id), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if err != nil && !notFound(err) {
		return fmt.Errorf("purge secret %s: %w", id, err)
	}
	return nil
}
