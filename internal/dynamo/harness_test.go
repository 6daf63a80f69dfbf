package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/resources"
)

// The store tests run against DynamoDB Local through stacktest: the stack `localdev exec` names,
// or one the test binary starts. Under -short they skip; the mechanics tests that need no
// database still run.
func TestMain(m *testing.M) { stacktest.Main(m) }

// newTable creates the table with the given logical ID (resources.RunsTable, ...) under a name
// unique to the test, on DynamoDB Local, and returns a client and the table's name. It skips
// the test when there is no local stack.
func newTable(tb testing.TB, logicalID string) (API, string) {
	tb.Helper()
	def, ok := resources.TableByID(logicalID)
	require.Truef(tb, ok, "no table %s in resources", logicalID)
	var b [4]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err, "random table prefix")
	name := "t" + hex.EncodeToString(b[:]) + "-" + def.Suffix
	db := stack.DynamoDBClient(stacktest.Endpoints(tb).DynamoDB)
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
