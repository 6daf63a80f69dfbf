package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	e := New(&buf)
	e.now = func() time.Time { return time.UnixMilli(1700000000000) }
	err := e.Emit(map[string]string{"Function": "executor"}, map[string]any{"job_id": "j1"},
		Metric{Name: "DevicesSucceeded", Value: 3, Unit: Count},
		Metric{Name: "OutputBytes", Value: 2048, Unit: Bytes})
	if err != nil {
		t.Fatal(err)
	}
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
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &doc); err != nil {
		t.Fatalf("line %q is not JSON: %v", buf.String(), err)
	}
	cw := doc.AWS.CloudWatchMetrics
	if doc.AWS.Timestamp != 1700000000000 || len(cw) != 1 || cw[0].Namespace != Namespace {
		t.Fatalf("metadata = %+v", doc.AWS)
	}
	if len(cw[0].Dimensions) != 1 || len(cw[0].Dimensions[0]) != 1 || cw[0].Dimensions[0][0] != "Function" {
		t.Errorf("dimensions = %v", cw[0].Dimensions)
	}
	if len(cw[0].Metrics) != 2 || cw[0].Metrics[1].Unit != "Bytes" {
		t.Errorf("metrics = %v", cw[0].Metrics)
	}
	if doc.Function != "executor" || doc.JobID != "j1" || doc.DevicesSucceeded != 3 || doc.OutputBytes != 2048 {
		t.Errorf("values = %+v", doc)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("want exactly one line, got %q", buf.String())
	}
}

func TestEmitWithoutMetricsFails(t *testing.T) {
	if err := New(&bytes.Buffer{}).Emit(nil, nil); err == nil {
		t.Fatal("Emit with no metric succeeded")
	}
}
