package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkImport1000Devices imports 1,000 devices (each with a password, so a credential is
// stored per device) in one request through the local gateway into DynamoDB Local. Every
// iteration uses fresh ids in the same tables. The bar: under 2 s locally.
func BenchmarkImport1000Devices(b *testing.B) {
	const n = 1000
	e := newBenchEnv(b)
	bodies := make([][]byte, b.N)
	for it := range bodies {
		rows := make([]map[string]any, n)
		for i := range rows {
			rows[i] = deviceJSON(fmt.Sprintf("b%d-%04d", it, i), map[string]any{
				"host": fmt.Sprintf("10.%d.%d.%d", it%250, i/250, i%250+1), "tags": map[string]string{"rack": fmt.Sprint(i % 40)},
			})
		}
		var err error
		bodies[it], err = json.Marshal(rows)
		require.NoError(b, err)
	}
	var total time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		req, err := http.NewRequest("POST", e.url+"/v1/devices/import", bytes.NewReader(bodies[it]))
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		total += time.Since(start)
		require.NoError(b, err)
		var res struct {
			Created int `json:"created"`
		}
		require.Equal(b, http.StatusCreated, resp.StatusCode, "import: %s", truncate(body))
		require.NoError(b, json.Unmarshal(body, &res), "import: %s", truncate(body))
		require.Equal(b, n, res.Created, "import: created")
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "devices/s")
}
