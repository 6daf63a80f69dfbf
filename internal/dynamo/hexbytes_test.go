package dynamo

import (
	"encoding/hex"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHexBytes(t *testing.T) {
	const sha = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
	tests := []struct {
		name     string
		digest   string
		stored   types.AttributeValue // nil: the attribute is left out
		readsAgo types.AttributeValue // an item written before, holding the hex
	}{
		{name: "a SHA-256 as its 32 bytes", digest: sha, stored: &types.AttributeValueMemberB{Value: mustHex(t, sha)},
			readsAgo: &types.AttributeValueMemberS{Value: sha}},
		{name: "128 bits as 16 bytes", digest: sha[:32], stored: &types.AttributeValueMemberB{Value: mustHex(t, sha[:32])},
			readsAgo: &types.AttributeValueMemberS{Value: sha[:32]}},
		{name: "no digest is left out", digest: "", stored: nil},
		{name: "upper-case hex kept as written", digest: "ABCD", stored: &types.AttributeValueMemberS{Value: "ABCD"}},
		{name: "not hex kept as written", digest: "xyz", stored: &types.AttributeValueMemberS{Value: "xyz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item, err := attributevalue.MarshalMap(runItem{ID: "r1", ContentSHA256: hexBytes(tt.digest)})
			require.NoError(t, err)
			assert.Equal(t, tt.stored, item["content_sha256"])
			var back runItem
			require.NoError(t, attributevalue.UnmarshalMap(item, &back))
			assert.Equal(t, tt.digest, string(back.ContentSHA256), "read back")
			if tt.readsAgo != nil {
				item["content_sha256"] = tt.readsAgo
				require.NoError(t, attributevalue.UnmarshalMap(item, &back))
				assert.Equal(t, tt.digest, string(back.ContentSHA256), "an item written before")
			}
		})
	}
	var h hexBytes
	assert.Error(t, h.UnmarshalDynamoDBAttributeValue(&types.AttributeValueMemberN{Value: "1"}), "a number is no digest")
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(tb, err)
	return b
}
