package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// TestGroups: a SendMessageBatch call's worth is at most ten messages and at most 256 KiB.
func TestGroups(t *testing.T) {
	body := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		bodies []string
		want   [][]int
	}{
		{name: "none", bodies: nil, want: nil},
		{name: "ten small, then one", bodies: []string{body(1), body(1), body(1), body(1), body(1), body(1), body(1), body(1), body(1), body(1), body(1)}, want: [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {10}}},
		{name: "by bytes", bodies: []string{body(100 << 10), body(100 << 10), body(100 << 10), body(10)}, want: [][]int{{0, 1}, {2, 3}}},
		{name: "exactly the limit", bodies: []string{body(128 << 10), body(128 << 10), body(1)}, want: [][]int{{0, 1}, {2}}},
		{name: "one over the limit alone", bodies: []string{body(1), body(300 << 10), body(1)}, want: [][]int{{0}, {1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, groups(tt.bodies))
		})
	}
}

// callSizes records the bytes of message bodies in each SendMessageBatch call.
type callSizes struct {
	API
	mu    sync.Mutex
	sizes []int
}

func (c *callSizes) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	n := 0
	for _, e := range in.Entries {
		n += len(aws.ToString(e.MessageBody))
	}
	c.mu.Lock()
	c.sizes = append(c.sizes, n)
	c.mu.Unlock()
	return c.API.SendMessageBatch(ctx, in, opts...)
}

func (c *callSizes) get() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sizes)
}

// TestSenderLargeMessages sends batch messages that carry their devices, too large for ten in
// one call, to the SQS-compatible server, and receives every one whole.
func TestSenderLargeMessages(t *testing.T) {
	client := stack.SQSClient(stacktest.Endpoints(t).SQS)
	ctx := context.Background()
	var b [4]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("t" + hex.EncodeToString(b[:]) + "-bulk")})
	require.NoError(t, err)
	sizes := &callSizes{API: client}
	s, err := NewSender(sizes, aws.ToString(q.QueueUrl))
	require.NoError(t, err)

	const n = 12
	msgs := make([]bulk.Message, n)
	for i := range msgs {
		m := bulk.Message{JobID: "job", Batch: i, Command: "show version", DevicesAt: time.Now().UTC()}
		for k := range bulk.MaxBatchSize {
			id := fmt.Sprintf("b%02d-d%02d", i, k)
			m.DeviceIDs = append(m.DeviceIDs, id)
			// A long RSA host key and tags: about 1.7 KB a device, 85 KB a message.
			m.Devices = append(m.Devices, device.Device{ID: id, Host: id + ".example.net", Port: 22, Platform: "cisco_ios",
				HostKey: "ssh-rsa " + strings.Repeat("A", 700), Tags: map[string]string{"role": strings.Repeat("r", 800)}})
		}
		msgs[i] = m
	}
	failed, err := s.SendAll(ctx, msgs)
	require.NoError(t, err)
	require.Empty(t, failed, "messages not sent")
	// The stand-in takes up to 1 MiB a call; SQS's classic bound is what the sender keeps to.
	require.Greater(t, len(sizes.get()), 2, "calls: %v bytes", sizes.get())
	for _, n := range sizes.get() {
		assert.LessOrEqual(t, n, 262144, "bytes in one SendMessageBatch (SQS: 256 KiB)")
	}

	got := map[int]bulk.Message{}
	// Long polls until every message came (an empty answer is not the end: SQS samples).
	for polls := 0; len(got) < n; polls++ {
		require.Less(t, polls, 20, "received %d of %d messages", len(got), n)
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		require.NoError(t, err)
		for _, r := range out.Messages {
			var m bulk.Message
			require.NoError(t, json.Unmarshal([]byte(aws.ToString(r.Body)), &m))
			got[m.Batch] = m
		}
	}
	for i, want := range msgs {
		assert.Equal(t, want.DeviceIDs, got[i].DeviceIDs, "batch %d's devices", i)
		require.Len(t, got[i].Devices, bulk.MaxBatchSize, "batch %d's snapshot", i)
		assert.Equal(t, want.Devices[49].HostKey, got[i].Devices[49].HostKey, "batch %d's last device whole", i)
		assert.True(t, want.DevicesAt.Equal(got[i].DevicesAt), "batch %d's snapshot time", i)
	}
}
