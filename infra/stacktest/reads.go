package stacktest

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// ReadCounter is a DynamoDB client that counts the items its reads (GetItem, Query, Scan,
// BatchGetItem) return, for tests that bound what an operation reads from the real store.
type ReadCounter struct {
	*dynamodb.Client
	items atomic.Int64
}

// NewReadCounter wraps a client.
func NewReadCounter(c *dynamodb.Client) *ReadCounter { return &ReadCounter{Client: c} }

// Items returns how many items the reads returned so far.
func (c *ReadCounter) Items() int64 { return c.items.Load() }

// GetItem implements the client's GetItem, counting the item found.
func (c *ReadCounter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.Client.GetItem(ctx, in, opts...)
	if err == nil && out.Item != nil {
		c.items.Add(1)
	}
	return out, err
}

// Query implements the client's Query, counting the items returned.
func (c *ReadCounter) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.Client.Query(ctx, in, opts...)
	if err == nil {
		c.items.Add(int64(len(out.Items)))
	}
	return out, err
}

// Scan implements the client's Scan, counting the items returned.
func (c *ReadCounter) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.Client.Scan(ctx, in, opts...)
	if err == nil {
		c.items.Add(int64(len(out.Items)))
	}
	return out, err
}

// BatchGetItem implements the client's BatchGetItem, counting the items returned.
func (c *ReadCounter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := c.Client.BatchGetItem(ctx, in, opts...)
	if err == nil {
		for _, items := range out.Responses {
			c.items.Add(int64(len(items)))
		}
	}
	return out, err
}
