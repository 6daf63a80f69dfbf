package app

import (
	"log/slog"
	"time"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
)

// AuditTrail builds the audit trail every function records to: each entry is appended to the
// audit table (kept NET_AUTO_AUDIT_MAX_DAYS) and written as one structured log line.
func AuditTrail(cfg config.Config, db dynamo.API, logger *slog.Logger) (*audit.Trail, *dynamo.AuditStore, error) {
	store, err := dynamo.NewAuditStore(db, cfg.Tables[resources.AuditTable], time.Duration(cfg.AuditMaxDays)*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	return audit.NewTrail(store, logger), store, nil
}
