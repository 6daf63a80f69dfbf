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

// TestEmitValues: a metric's data points go out as one array, up to MaxValues of them.
func TestEmitValues(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64
		wantErr string
	}{
		{name: "several", values: []float64{12, 40, 7}},
		{name: "the most", values: make([]float64, MaxValues)},
		{name: "too many", values: make([]float64, MaxValues+1), wantErr: "DeviceDuration has 101 values, at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := New(&buf).Emit(map[string]string{"Status": "succeeded"}, nil,
				Metric{Name: "DeviceRuns", Value: float64(len(tt.values)), Unit: Count},
				Metric{Name: "DeviceDuration", Values: tt.values, Unit: Milliseconds})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Zero(t, buf.Len(), "nothing written")
				return
			}
			require.NoError(t, err)
			var doc struct {
				DeviceRuns     float64   `json:"DeviceRuns"`
				DeviceDuration []float64 `json:"DeviceDuration"`
			}
			require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &doc), "line %q", buf.String())
			assert.Equal(t, tt.values, doc.DeviceDuration, "data points")
			assert.Equal(t, float64(len(tt.values)), doc.DeviceRuns, "count")
		})
	}
}
