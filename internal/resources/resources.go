// Package resources declares NetAuto's storage and messaging resources (DynamoDB tables and SQS
// queues) as plain data. It is the single source of truth that the local stack provisions from and
// that the template test compares template.yaml against, so the two can never drift apart.
//
// The package imports no AWS SDK: adapters translate these definitions into API calls.
package resources

import "time"

// KeyType is the DynamoDB key attribute type of a key attribute.
type KeyType string

// Key attribute types used by NetAuto tables.
const (
	String KeyType = "S"
	Number KeyType = "N"
)

// Attribute is a key attribute: a name and its scalar type.
type Attribute struct {
	Name string
	Type KeyType
}

// Index is a global secondary index.
type Index struct {
	Name         string
	PartitionKey Attribute
	SortKey      Attribute
	// Include lists the non-key attributes the index carries (projection INCLUDE); empty
	// projects every attribute (ALL).
	Include []string
}

// Projection returns the index's DynamoDB projection type: INCLUDE or ALL.
func (ix Index) Projection() string {
	if len(ix.Include) > 0 {
		return "INCLUDE"
	}
	return "ALL"
}

// runAttributes are a run item's attributes that its indexes carry: all but the inline output
// tail, which only reads of the output need and which would otherwise be written three times.
var runAttributes = []string{
	"id", "device_id", "command", "job_id", "requested_by", "status", "reason", "message", "exit_status",
	"bytes", "chunks", "truncated", "digest", "attempt", "lease_until", "created_at", "started_at",
	"finished_at", "connect_ms", "auth_ms", "first_byte_ms", "total_ms", "expires_at", "tail_size",
}

// historyAttributes are what the by_device and by_command indexes carry: a run's fields, what
// drift adds and the per-command results (cmds: a sequence's Command is only its summary, so
// drift tells two sequences apart by them). Changing a projection means replacing the index
// (docs/deploy.md).
var historyAttributes = append(append([]string(nil), runAttributes...), "content_sha256", "filtered_digest", "changed", "previous_run_id", "cmds")

// jobListAttributes are a job's fields the job list shows: none that change with progress, so
// recording progress never writes the index.
var jobListAttributes = []string{"id", "command", "requested_by", "device_count", "status", "created_at", "finished_at", "error", "expires_at", "sites"}

// purgeAttributes are what the purges read from the by_day index: runs due by age and the
// changed byte counters.
var purgeAttributes = []string{"id", "device_id", "job_id", "status", "created_at", "bytes", "chunks", "tail_size"}

// Table describes one DynamoDB table as template.yaml declares it.
type Table struct {
	// LogicalID is the resource's logical ID in template.yaml.
	LogicalID string
	// EnvVar is the environment variable through which functions receive the table name.
	EnvVar string
	// Suffix is appended to a stack prefix to make the physical name locally.
	Suffix       string
	PartitionKey Attribute
	SortKey      Attribute
	Indexes      []Index
	// TTLAttribute names the epoch-seconds attribute DynamoDB TTL deletes items by.
	TTLAttribute string
	// Stream is true when the table streams old images (the retention TTL consumer reads it).
	Stream bool
}

// Queue describes one SQS queue as template.yaml declares it.
type Queue struct {
	LogicalID string
	// EnvVar is the environment variable through which functions receive the queue URL.
	EnvVar string
	Suffix string
	// VisibilityTimeoutSeconds is how long a received message stays invisible.
	VisibilityTimeoutSeconds int
	// MessageRetentionSeconds is how long an unreceived message is kept.
	MessageRetentionSeconds int
	// DeadLetter names the LogicalID of the queue that receives messages after MaxReceiveCount
	// receives; empty for a queue without redrive.
	DeadLetter      string
	MaxReceiveCount int
}

// TTLAttribute is the attribute name every NetAuto table uses for DynamoDB TTL.
const TTLAttribute = "expires_at"

// Key attribute names shared by the tables.
const (
	AttrPK     = "pk"
	AttrSK     = "sk"
	AttrGSI1PK = "gsi1pk"
	AttrGSI1SK = "gsi1sk"
	AttrGSI2PK = "gsi2pk"
	AttrGSI2SK = "gsi2sk"
	AttrGSI3PK = "gsi3pk"
	AttrGSI3SK = "gsi3sk"
)

// Index names.
const (
	// IndexRunsByDevice lists a device's runs by creation time (newest first, or oldest first for
	// the byte-cap purge).
	IndexRunsByDevice = "by_device"
	// IndexRunsByDay lists runs created on one UTC day (spread over shards of the day), so the age
	// purge reads only what is due.
	IndexRunsByDay = "by_day"
	// IndexRunsByCommand lists the finished runs of one command on one device by creation time:
	// a device's history of that command, and the previous run its output is compared with.
	IndexRunsByCommand = "by_command"
	// IndexJobsByCreated lists bulk jobs newest first (one partition: jobs are created at the
	// pace of people and scripts, far below a partition's 1,000 writes a second).
	IndexJobsByCreated = "by_created"
	// IndexSavedJobsByDue lists saved jobs with an enabled schedule by their next due time
	// (sparse: only those carry its keys), so a scheduler fire reads only what is due.
	IndexSavedJobsByDue = "by_due"
	// IndexAuditByActor lists one actor's audit entries newest first.
	IndexAuditByActor = "by_actor"
	// IndexAuditByTarget lists the audit entries of one target (a device, job, run) newest first.
	IndexAuditByTarget = "by_target"
)

var (
	pk = Attribute{Name: AttrPK, Type: String}
	sk = Attribute{Name: AttrSK, Type: String}
)

// Logical IDs, referenced by code that needs a specific resource.
const (
	DevicesTable     = "DevicesTable"
	RunsTable        = "RunsTable"
	JobsTable        = "JobsTable"
	ConnectionsTable = "ConnectionsTable"
	// AuditTable is the append-only audit trail: every function may put entries, none may update
	// or delete one (infra/templatecheck enforces it on template.yaml).
	AuditTable = "AuditTable"
	// SavedJobsTable keeps saved jobs (one partition, by id); their secret answers are in the
	// secret store.
	SavedJobsTable = "SavedJobsTable"
	// WebhooksTable keeps webhooks (one partition) and each one's delivery log (a partition per
	// webhook, expiring by TTL); URLs and signing secrets are in the secret store.
	WebhooksTable = "WebhooksTable"
	// WebhookQueue carries webhook deliveries, retries delayed by their backoff; WebhookDLQ
	// keeps the messages the notifier failed on (its own services down) five times.
	WebhookQueue = "WebhookQueue"
	WebhookDLQ   = "WebhookDeadLetterQueue"
	BulkQueue    = "BulkQueue"
	BulkDLQ      = "BulkDeadLetterQueue"
)

// ExecutorTimeoutSeconds is the executor function's timeout; the bulk queue's visibility timeout
// is six times this, as AWS recommends for SQS event sources.
const ExecutorTimeoutSeconds = 300

// NotifierTimeoutSeconds is the notifier function's timeout: a batch of 10 deliveries of at
// most 10 s each, one after another, with room to log them. The webhook queue's visibility
// timeout is six times this.
const NotifierTimeoutSeconds = 120

// ExecutorMaxConcurrency is how many executor invocations the bulk queue's event source runs at
// once by default (template parameter ExecutorMaxConcurrency; the local gateway's poller uses it
// too): 20 batches of 50 devices, so a 1,000-device job runs all at once.
const ExecutorMaxConcurrency = 20

// ExecutorGCPercent is the executor function's GOGC (template.yaml): a batch's live heap is a few
// MB against the function's hundreds, so the collector runs a quarter as often as at Go's default
// of 100, and the memory limit Lambda functions start with (app.Start: GOMEMLIMIT at 90% of the
// function's memory) keeps the heap inside the function. The benchmarks that measure the
// executor's CPU and latency run with it.
const ExecutorGCPercent = 400

// WatchdogPeriod is how often the watchdog function runs: its EventBridge rule is
// WatchdogSchedule in template.yaml, and the local stack runs it as often.
const WatchdogPeriod = 5 * time.Minute

// WatchdogSchedule is WatchdogPeriod as an EventBridge schedule expression.
const WatchdogSchedule = "rate(5 minutes)"

// SchedulerPeriod is how often the scheduler function runs (its EventBridge rule in
// template.yaml is SchedulerSchedule; the local stack ticks it as often).
const SchedulerPeriod = time.Minute

// SchedulerSchedule is SchedulerPeriod as an EventBridge schedule expression.
const SchedulerSchedule = "rate(1 minute)"

// Tables returns every DynamoDB table NetAuto uses.
func Tables() []Table {
	return []Table{
		{
			LogicalID: DevicesTable, EnvVar: "NET_AUTO_DEVICES_TABLE", Suffix: "devices",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
		},
		{
			LogicalID: RunsTable, EnvVar: "NET_AUTO_RUNS_TABLE", Suffix: "runs",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute, Stream: true,
			Indexes: []Index{
				{Name: IndexRunsByDevice, PartitionKey: Attribute{AttrGSI1PK, String}, SortKey: Attribute{AttrGSI1SK, String}, Include: historyAttributes},
				{Name: IndexRunsByDay, PartitionKey: Attribute{AttrGSI2PK, String}, SortKey: Attribute{AttrGSI2SK, String}, Include: purgeAttributes},
				{Name: IndexRunsByCommand, PartitionKey: Attribute{AttrGSI3PK, String}, SortKey: Attribute{AttrGSI3SK, String}, Include: historyAttributes},
			},
		},
		{
			LogicalID: JobsTable, EnvVar: "NET_AUTO_JOBS_TABLE", Suffix: "jobs",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
			Indexes: []Index{
				{Name: IndexJobsByCreated, PartitionKey: Attribute{AttrGSI1PK, String}, SortKey: Attribute{AttrGSI1SK, String}, Include: jobListAttributes},
			},
		},
		{
			LogicalID: ConnectionsTable, EnvVar: "NET_AUTO_CONNECTIONS_TABLE", Suffix: "connections",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
		},
		{
			// pk is the entry's UTC day, sk its time-sortable id; the indexes key by actor and
			// by target. Entries expire after NET_AUTO_AUDIT_MAX_DAYS (TTL only: nothing deletes).
			LogicalID: AuditTable, EnvVar: "NET_AUTO_AUDIT_TABLE", Suffix: "audit",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
			Indexes: []Index{
				{Name: IndexAuditByActor, PartitionKey: Attribute{AttrGSI1PK, String}, SortKey: Attribute{AttrGSI1SK, String}},
				{Name: IndexAuditByTarget, PartitionKey: Attribute{AttrGSI2PK, String}, SortKey: Attribute{AttrGSI2SK, String}},
			},
		},
		{
			// Besides the saved jobs (pk SAVED), it keeps the scheduler's claims of due times
			// (pk FIRE#<id>, expiring a week on).
			LogicalID: SavedJobsTable, EnvVar: "NET_AUTO_SAVED_JOBS_TABLE", Suffix: "saved-jobs",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
			Indexes: []Index{
				{Name: IndexSavedJobsByDue, PartitionKey: Attribute{AttrGSI1PK, String}, SortKey: Attribute{AttrGSI1SK, String}},
			},
		},
		{
			LogicalID: WebhooksTable, EnvVar: "NET_AUTO_WEBHOOKS_TABLE", Suffix: "webhooks",
			PartitionKey: pk, SortKey: sk, TTLAttribute: TTLAttribute,
		},
	}
}

// Queues returns every SQS queue NetAuto uses, dead-letter queues first so that a queue's
// redrive target always exists before it is created.
func Queues() []Queue {
	return []Queue{
		{
			LogicalID: BulkDLQ, EnvVar: "NET_AUTO_BULK_DLQ_URL", Suffix: "bulk-dlq",
			VisibilityTimeoutSeconds: 6 * ExecutorTimeoutSeconds,
			MessageRetentionSeconds:  14 * 24 * 3600,
		},
		{
			LogicalID: BulkQueue, EnvVar: "NET_AUTO_BULK_QUEUE_URL", Suffix: "bulk",
			VisibilityTimeoutSeconds: 6 * ExecutorTimeoutSeconds,
			MessageRetentionSeconds:  4 * 24 * 3600,
			DeadLetter:               BulkDLQ, MaxReceiveCount: 5,
		},
		{
			LogicalID: WebhookDLQ, EnvVar: "NET_AUTO_WEBHOOK_DLQ_URL", Suffix: "webhook-dlq",
			VisibilityTimeoutSeconds: 6 * NotifierTimeoutSeconds,
			MessageRetentionSeconds:  14 * 24 * 3600,
		},
		{
			LogicalID: WebhookQueue, EnvVar: "NET_AUTO_WEBHOOK_QUEUE_URL", Suffix: "webhooks",
			VisibilityTimeoutSeconds: 6 * NotifierTimeoutSeconds,
			MessageRetentionSeconds:  24 * 3600,
			DeadLetter:               WebhookDLQ, MaxReceiveCount: 5,
		},
	}
}

// TableByID returns the table with the given logical ID and whether it exists.
func TableByID(logicalID string) (Table, bool) {
	for _, t := range Tables() {
		if t.LogicalID == logicalID {
			return t, true
		}
	}
	return Table{}, false
}

// QueueByID returns the queue with the given logical ID and whether it exists.
func QueueByID(logicalID string) (Queue, bool) {
	for _, q := range Queues() {
		if q.LogicalID == logicalID {
			return q, true
		}
	}
	return Queue{}, false
}
