package memstore_test

import (
	"testing"

	"github.com/netauto/netauto/internal/bulk/bulktest"
	"github.com/netauto/netauto/internal/bulk/memstore"
)

func TestJobsContract(t *testing.T) {
	bulktest.JobStoreContract(t, memstore.NewJobs())
}
