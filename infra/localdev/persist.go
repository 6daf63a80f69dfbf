package localdev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/infra/stack"
)

// EnvMemory names the switch that keeps `make dev`'s database in memory (forgotten on exit)
// instead of under the state folder.
const EnvMemory = "NET_AUTO_DEV_MEMORY"

// DefaultStopGrace is how long Ctrl-C lets the devices in flight finish before they are cut short.
const DefaultStopGrace = 30 * time.Second

// MemoryFromEnv reads $NET_AUTO_DEV_MEMORY: unset or empty is false.
func MemoryFromEnv() (bool, error) {
	v := strings.TrimSpace(os.Getenv(EnvMemory))
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: must be 1, true, 0 or false", EnvMemory, v)
	}
	return b, nil
}

// The state folder's layout. The signing key and the credential files sit beside these.
const (
	// dynamoDir holds DynamoDB Local's database file.
	dynamoDir = "dynamodb"
	// fleetDir holds the simulated fleet's ports and host keys, which devices were seeded
	// into the inventory, and the log of the commands the devices ran.
	fleetDir = "fleet"
	// lockFile is held by the `make dev` using the folder.
	lockFile = "localdev.lock"
)

// lockState takes the state folder for this process, so two `make dev` never share one
// database file; the lock goes with the process. It returns the release.
func lockState(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state folder: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another make dev (pid %s) uses the state folder %s; stop it, or set %s to another folder: %w",
			strings.TrimSpace(string(owner)), dir, EnvStateDir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { _ = f.Close() }, nil
}

// seededRecord is which simulated devices were put in the inventory of which database, so a
// restart seeds only devices it never seeded: a user's edits and deletions stand.
type seededRecord struct {
	// Database identifies the devices table: its creation time. A new table (a reset or
	// in-memory database) was never seeded.
	Database string   `json:"database"`
	IDs      []string `json:"ids"`
}

// databaseID identifies the devices table by its creation time.
func databaseID(ctx context.Context, ep stack.Endpoints, table string) (string, error) {
	out, err := stack.DynamoDBClient(ep.DynamoDB).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", table, err)
	}
	return table + "@" + aws.ToTime(out.Table.CreationDateTime).UTC().Format(time.RFC3339Nano), nil
}

// loadSeeded returns the ids seeded into database; none when the record is of another one.
func loadSeeded(path, database string) (map[string]bool, error) {
	ids := map[string]bool{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ids, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var rec seededRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rec.Database != database {
		return ids, nil
	}
	for _, id := range rec.IDs {
		ids[id] = true
	}
	return ids, nil
}

// saveSeeded records the ids seeded into database.
func saveSeeded(path, database string, ids map[string]bool) error {
	rec := seededRecord{Database: database}
	for id := range ids {
		rec.IDs = append(rec.IDs, id)
	}
	slices.Sort(rec.IDs)
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode seeded devices: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create fleet folder: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write seeded devices: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write seeded devices: %w", err)
	}
	return nil
}
