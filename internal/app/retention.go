package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/cronexpr"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
)

// Triggers of a purge, as its report names them.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerLocal    = "local_schedule"
)

// ttlPrincipal is the userIdentity.principalId of deletions DynamoDB TTL makes.
const ttlPrincipal = "dynamodb.amazonaws.com"

// RetentionOptions are the knobs tests and the local gateway turn; a Lambda main passes the zero
// value.
type RetentionOptions struct {
	Logger *slog.Logger
	// Metrics receives EMF lines; default stdout.
	Metrics retention.Metrics
	// DB replaces the DynamoDB client built from the environment.
	DB dynamo.API
	// Budget bounds one purge (0: the invocation's deadline).
	Budget time.Duration
	// Lookback replaces retention.DefaultLookback (tests).
	Lookback time.Duration
}

// NewPurger builds the retention purger from a function's configuration.
func NewPurger(ctx context.Context, cfg config.Config, opts RetentionOptions) (*retention.Purger, *dynamo.RetentionStore, error) {
	db := opts.DB
	if db == nil {
		awsCfg, err := AWSConfig(ctx)
		if err != nil {
			return nil, nil, err
		}
		db = dynamo.NewClient(awsCfg)
	}
	store, err := dynamo.NewRetentionStore(db, cfg.Tables[resources.RunsTable], cfg.Tables[resources.JobsTable])
	if err != nil {
		return nil, nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(os.Stdout)
	}
	schedule, err := cronexpr.EventBridge(cfg.RetentionCron)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", config.EnvRetentionCron, err)
	}
	p := &retention.Purger{
		Store: store, Jobs: store, Logger: opts.Logger, Metrics: opts.Metrics, Budget: opts.Budget, Lookback: opts.Lookback,
		Settings: retention.Settings{MaxDays: cfg.RunMaxDays, MaxBytes: cfg.RunMaxBytes, Cron: cfg.RetentionCron, Schedule: schedule},
	}
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	return p, store, nil
}

// RetentionHandler is the retention function's Lambda handler. The template sends it two kinds of
// events: the EventBridge schedule (it purges and returns the report) and the runs table's stream,
// filtered to TTL deletions (it subtracts deleted chunks from their devices' byte counters and
// returns the records it could not handle as batch item failures).
type RetentionHandler func(ctx context.Context, raw json.RawMessage) (any, error)

// NewRetention builds the retention function's handler.
func NewRetention(ctx context.Context, cfg config.Config, opts RetentionOptions) (RetentionHandler, error) {
	if opts.DB == nil {
		awsCfg, err := AWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		opts.DB = dynamo.NewClient(awsCfg)
	}
	p, store, err := NewPurger(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	if p.Audit, _, err = AuditTrail(cfg, opts.DB, p.Logger); err != nil {
		return nil, err
	}
	streams := StreamHandler(store, p.Logger)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records    []json.RawMessage `json:"Records"`
			Source     string            `json:"source"`
			DetailType string            `json:"detail-type"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("retention: decode event: %w", err)
		}
		switch {
		case probe.Records != nil:
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("retention: decode stream event: %w", err)
			}
			return streams(ctx, ev)
		case probe.DetailType == "Scheduled Event" || probe.Source == "aws.events":
			rep, err := p.Purge(ctx, TriggerSchedule)
			if err != nil {
				return nil, fmt.Errorf("retention purge: %w", err)
			}
			return rep, nil
		default:
			return nil, errors.New("retention: unrecognised event: want an EventBridge scheduled event or DynamoDB stream records")
		}
	}, nil
}

// TTLForgetter subtracts TTL-deleted chunks from byte counters and drops what TTL-deleted items
// held of outputs stored once; *dynamo.RetentionStore implements it.
type TTLForgetter interface {
	ForgetTTLChunk(ctx context.Context, pk, sk, deviceID string, size int64) (bool, error)
	// ForgetTTLReference drops a TTL-deleted run item's reference to its output stored once.
	// attempt is the run item's: each attempt references the body under its own item.
	ForgetTTLReference(ctx context.Context, blob, runID string, attempt int) error
	// ForgetTTLBlob handles a TTL-deleted head or reference item of an output stored once.
	ForgetTTLBlob(ctx context.Context, pk, sk, gen string, size int64) (bool, error)
}

// StreamHandler handles runs-table stream records: for every chunk, and every run item with an
// inline output tail, that DynamoDB TTL removed (eventName REMOVE, userIdentity.principalId
// dynamodb.amazonaws.com) it subtracts the output's size from its device's counter, exactly once.
// Other records (the purge's own deletes, run items without output, inserts) are ignored. A record it cannot handle is reported as a batch item failure so
// Lambda retries from it.
func StreamHandler(store TTLForgetter, logger *slog.Logger) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	if logger == nil {
		logger = slog.Default()
	}
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var resp events.DynamoDBEventResponse
		var chunks, bytes int64
		for i, r := range ev.Records {
			pk, sk, dev, size, ok, err := ttlChunk(r)
			if err == nil && ok {
				var did bool
				did, err = store.ForgetTTLChunk(ctx, pk, sk, dev, size)
				if did {
					chunks++
					bytes += size
				}
				if blob := oldHex(r, "blob"); err == nil && blob != "" {
					attempt, _ := strconv.Atoi(oldNumber(r, "attempt"))
					err = store.ForgetTTLReference(ctx, blob, strings.TrimPrefix(pk, "RUN#"), attempt)
				}
			}
			if err == nil && strings.HasPrefix(oldString(r, resources.AttrPK), "BLOB#") && isTTLRemove(r) {
				size, _ := strconv.ParseInt(oldNumber(r, "size"), 10, 64)
				_, err = store.ForgetTTLBlob(ctx, oldString(r, resources.AttrPK), oldString(r, resources.AttrSK), oldString(r, "gen"), size)
			}
			if err != nil {
				logger.ErrorContext(ctx, "retention.ttl_record", "index", i, "event_id", r.EventID, "err", err)
				// Lambda retries from the first failure; the records after it come again with it.
				resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: r.Change.SequenceNumber}}
				break
			}
		}
		logger.InfoContext(ctx, "retention.ttl", "records", len(ev.Records), "chunks_forgotten", chunks, "bytes_forgotten", bytes,
			"failures", len(resp.BatchItemFailures))
		return resp, nil
	}
}

// isTTLRemove reports whether a stream record is a deletion by DynamoDB TTL.
func isTTLRemove(r events.DynamoDBEventRecord) bool {
	return r.EventName == string(events.DynamoDBOperationTypeRemove) && r.UserIdentity != nil &&
		r.UserIdentity.Type == "Service" && r.UserIdentity.PrincipalID == ttlPrincipal
}

// oldString and oldNumber read an attribute of a record's old image ("" when absent).
func oldString(r events.DynamoDBEventRecord, name string) string {
	if v, found := r.Change.OldImage[name]; found && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

// oldHex reads a digest of the old image that the store keeps as raw bytes (as hex before).
func oldHex(r events.DynamoDBEventRecord, name string) string {
	if v, found := r.Change.OldImage[name]; found && v.DataType() == events.DataTypeBinary {
		return hex.EncodeToString(v.Binary())
	}
	return oldString(r, name)
}

func oldNumber(r events.DynamoDBEventRecord, name string) string {
	if v, found := r.Change.OldImage[name]; found && v.DataType() == events.DataTypeNumber {
		return v.Number()
	}
	return ""
}

// ttlChunk extracts a TTL-deleted chunk from a stream record; ok is false for records that are
// not one (and need nothing), err set for a chunk record it cannot read.
func ttlChunk(r events.DynamoDBEventRecord) (pk, sk, dev string, size int64, ok bool, err error) {
	if !isTTLRemove(r) {
		return "", "", "", 0, false, nil
	}
	img := r.Change.OldImage
	str := func(name string) string {
		if v, found := img[name]; found && v.DataType() == events.DataTypeString {
			return v.String()
		}
		return ""
	}
	pk, sk = str(resources.AttrPK), str(resources.AttrSK)
	if pk == "" {
		if k, found := r.Change.Keys[resources.AttrPK]; found && k.DataType() == events.DataTypeString {
			pk = k.String()
		}
		if k, found := r.Change.Keys[resources.AttrSK]; found && k.DataType() == events.DataTypeString {
			sk = k.String()
		}
	}
	sizeAttr := "size"
	switch {
	case !strings.HasPrefix(pk, "RUN#"):
		return "", "", "", 0, false, nil // not a run's: no output bytes
	case sk == "META":
		// A run item: its inline output tail, if it has one, is counted.
		if _, found := img["tail_size"]; !found {
			return "", "", "", 0, false, nil
		}
		sizeAttr = "tail_size"
	case !strings.HasPrefix(sk, "CHUNK#"):
		return "", "", "", 0, false, nil
	}
	dev = str("device_id")
	sv, found := img[sizeAttr]
	if dev == "" || !found || sv.DataType() != events.DataTypeNumber {
		return "", "", "", 0, false, fmt.Errorf("TTL-deleted output %s/%s: old image lacks device_id or %s (is the stream OLD_IMAGE?)", pk, sk, sizeAttr)
	}
	size, err = strconv.ParseInt(sv.Number(), 10, 64)
	if err != nil || size < 0 {
		return "", "", "", 0, false, fmt.Errorf("TTL-deleted chunk %s/%s: size %q", pk, sk, sv.Number())
	}
	return pk, sk, dev, size, true, nil
}
