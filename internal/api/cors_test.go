package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/resources"
)

// TestCORSCoversTheDocument holds the HTTP API's CORS configuration (resources.HTTPAPICORS, which
// the template check holds template.yaml's CorsConfiguration and routes to) to openapi.yaml: a
// browser may use every documented method and send every documented request header, so no
// documented operation is one API Gateway answers 404 or a preflight refuses.
func TestCORSCoversTheDocument(t *testing.T) {
	cors := resources.HTTPAPICORS()
	for _, o := range documentedOperations(t) {
		assert.Contains(t, cors.AllowMethods, o.method, "%s: method not in resources.HTTPAPICORS().AllowMethods", o)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(api.OpenAPIYAML(), &doc), "parse openapi.yaml")
	headers := 0
	for path, item := range doc.Paths {
		for key, node := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			var op struct {
				Parameters []struct {
					Name string `yaml:"name"`
					In   string `yaml:"in"`
				} `yaml:"parameters"`
			}
			require.NoError(t, node.Decode(&op), "openapi.yaml: %s %s", key, path)
			for _, p := range op.Parameters {
				if p.In != "header" {
					continue
				}
				headers++
				assert.Contains(t, cors.AllowHeaders, strings.ToLower(p.Name), "%s %s: header %s not in resources.HTTPAPICORS().AllowHeaders", strings.ToUpper(key), path, p.Name)
			}
		}
	}
	assert.NotZero(t, headers, "openapi.yaml documents no request header")
}
