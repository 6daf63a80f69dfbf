package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/resources"
)

// The store tests run against DynamoDB Local: the one named by NET_AUTO_TEST_DYNAMODB (as
// `go run ./infra/cmd/localdev exec -- go test ./internal/dynamo/` sets it), or else one this
// test binary starts. Under -short, or when no stack can be started, they skip; the tests of
// the shared mechanics that need no database still run.
var (
	testEndpoint string
	noStack      = "skipped under -short"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	if ep := os.Getenv(stacktest.EnvDynamoDB); ep != "" {
		testEndpoint = ep
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := stack.Start(ctx, stack.Options{Logger: logger})
	cancel()
	if err != nil {
		noStack = fmt.Sprintf("no local stack: %v", err)
		return m.Run()
	}
	defer st.Close()
	testEndpoint = st.Endpoints.DynamoDB
	return m.Run()
}

// newTable creates the table with the given logical ID (resources.RunsTable, ...) under a name
// unique to the test, on DynamoDB Local, and returns a client and the table's name. It skips
// the test when there is no local stack.
func newTable(tb testing.TB, logicalID string) (API, string) {
	tb.Helper()
	if testEndpoint == "" {
		tb.Skip(noStack)
	}
	def, ok := resources.TableByID(logicalID)
	require.Truef(tb, ok, "no table %s in resources", logicalID)
	var b [4]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err, "random table prefix")
	name := "t" + hex.EncodeToString(b[:]) + "-" + def.Suffix
	db := stack.DynamoDBClient(testEndpoint)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = db.CreateTable(ctx, stack.CreateTableInput(def, name))
	require.NoErrorf(tb, err, "create table %s", name)
	return db, name
}

// fakeAPI is a client that is never called.
type fakeAPI struct{ API }

// mustCursor encodes a key of string attributes as a page cursor.
func mustCursor(tb testing.TB, key map[string]string) string {
	tb.Helper()
	av, err := attributevalue.MarshalMap(key)
	require.NoError(tb, err)
	c, err := encodeCursor(av)
	require.NoError(tb, err)
	return c
}
