package stack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Pinned stand-in versions. DynamoDB Local ships inside an npm package of the Amplify CLI; its
// tarball is checked against the registry's published integrity before anything is unpacked.
const (
	DynamoDBLocalVersion = "1.25.1"
	dynamoPackage        = "amplify-dynamodb-simulator@2.9.30"
	dynamoIntegrity      = "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ=="
	FauxqsVersion        = "1.9.2"
)

var (
	//go:embed sqs/package.json
	sqsPackageJSON []byte
	//go:embed sqs/package-lock.json
	sqsPackageLock []byte
	//go:embed sqs/server.mjs
	sqsServer []byte
)

// Installed says where the fetched stand-ins live.
type Installed struct {
	// DynamoDBDir holds DynamoDBLocal.jar and DynamoDBLocal_lib.
	DynamoDBDir string
	// SQSDir holds server.mjs and its node_modules.
	SQSDir string
}

// Fetch makes sure both stand-ins are in cacheDir, downloading them through npm when missing.
// It is safe to call from several processes at once: a file lock serialises the work, and each
// stand-in is unpacked into a temporary folder that is renamed into place only when complete.
func Fetch(ctx context.Context, cacheDir string) (Installed, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Installed{}, fmt.Errorf("create cache dir %s: %w", cacheDir, err)
	}
	unlock, err := lockFile(filepath.Join(cacheDir, ".fetch.lock"))
	if err != nil {
		return Installed{}, err
	}
	defer unlock()

	ddb, err := fetchDynamoDB(ctx, cacheDir)
	if err != nil {
		return Installed{}, err
	}
	sqs, err := fetchSQS(ctx, cacheDir)
	if err != nil {
		return Installed{}, err
	}
	return Installed{DynamoDBDir: ddb, SQSDir: sqs}, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func fetchDynamoDB(ctx context.Context, cacheDir string) (string, error) {
	dir := filepath.Join(cacheDir, "dynamodb-local-"+DynamoDBLocalVersion)
	if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, "dynamodb-download-")
	if err != nil {
		return "", fmt.Errorf("create download dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	cmd := exec.CommandContext(ctx, "npm", "pack", dynamoPackage, "--pack-destination", tmp, "--silent")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack %s: %w: %s", dynamoPackage, err, bytes.TrimSpace(out))
	}
	matches, _ := filepath.Glob(filepath.Join(tmp, "*.tgz"))
	if len(matches) != 1 {
		return "", fmt.Errorf("npm pack %s: expected one tarball, found %d", dynamoPackage, len(matches))
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		return "", fmt.Errorf("read tarball: %w", err)
	}
	sum := sha512.Sum512(data)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != dynamoIntegrity {
		return "", fmt.Errorf("tarball of %s has integrity %s, want %s", dynamoPackage, got, dynamoIntegrity)
	}
	unpacked := filepath.Join(tmp, "emulator")
	if err := untarPrefix(bytes.NewReader(data), "package/emulator/", unpacked); err != nil {
		return "", fmt.Errorf("unpack %s: %w", dynamoPackage, err)
	}
	if _, err := os.Stat(filepath.Join(unpacked, "DynamoDBLocal.jar")); err != nil {
		return "", fmt.Errorf("unpack %s: DynamoDBLocal.jar missing: %w", dynamoPackage, err)
	}
	if err := os.Rename(unpacked, dir); err != nil {
		return "", fmt.Errorf("install DynamoDB Local: %w", err)
	}
	return dir, nil
}

// untarPrefix extracts the regular files of a gzip'd tarball whose names start with prefix into
// dst, refusing names that would escape dst.
func untarPrefix(r io.Reader, prefix, dst string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(hdr.Name, prefix) {
			continue
		}
		rel := filepath.Clean(strings.TrimPrefix(hdr.Name, prefix))
		if rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			return fmt.Errorf("tar entry %q escapes the target folder", hdr.Name)
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(target), err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", target, err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", target, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", target, err)
		}
	}
}

func fetchSQS(ctx context.Context, cacheDir string) (string, error) {
	h := sha256.New()
	h.Write(sqsPackageJSON)
	h.Write(sqsPackageLock)
	h.Write(sqsServer)
	dir := filepath.Join(cacheDir, "fauxqs-"+FauxqsVersion+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "fauxqs", "package.json")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, "fauxqs-install-")
	if err != nil {
		return "", fmt.Errorf("create install dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{
		"package.json": sqsPackageJSON, "package-lock.json": sqsPackageLock, "server.mjs": sqsServer,
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci fauxqs: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("install fauxqs: %w", err)
	}
	return dir, nil
}
