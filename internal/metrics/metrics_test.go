package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	e := New(&buf)
	e.now = func() time.Time { return time.UnixMilli(1700000000000) }
	err := e.Emit(map[string]string{"Function": "executor"}, map[string]any{"job_id": "j1"},
		Metric{Name: "DevicesSucceeded", Value: 3, Unit: Count},
		Metric{Name: "OutputBytes", Value: 2048, Unit: Bytes})
	require.NoError(t, err, "Emit")
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function         string  `json:"Function"`
		JobID            string  `json:"job_id"`
		DevicesSucceeded float64 `json:"DevicesSucceeded"`
		OutputBytes      float64 `json:"OutputBytes"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &doc), "line %q is not JSON", buf.String())
	cw := doc.AWS.CloudWatchMetrics
	require.Equal(t, int64(1700000000000), doc.AWS.Timestamp, "_aws.Timestamp")
	require.Len(t, cw, 1, "_aws.CloudWatchMetrics")
	require.Equal(t, Namespace, cw[0].Namespace, "_aws.CloudWatchMetrics[0].Namespace")
	assert.Equal(t, [][]string{{"Function"}}, cw[0].Dimensions, "dimensions")
	if assert.Len(t, cw[0].Metrics, 2, "metrics") {
		assert.Equal(t, "Bytes", cw[0].Metrics[1].Unit, "unit of the second metric")
	}
	assert.Equal(t, "executor", doc.Function, "Function")
	assert.Equal(t, "j1", doc.JobID, "job_id")
	assert.Equal(t, float64(3), doc.DevicesSucceeded, "DevicesSucceeded")
	assert.Equal(t, float64(2048), doc.OutputBytes, "OutputBytes")
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")), "lines written: %q", buf.String())
}

func TestEmitWithoutMetricsFails(t *testing.T) {
	require.Error(t, New(&bytes.Buffer{}).Emit(nil, nil), "Emit with no metric")
}
