package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/netauto/netauto/internal/resources"
)

// TestCORSCoversTheDocument holds the HTTP API's CORS configuration (resources.HTTPAPICORS, which
// the template check holds template.yaml's CorsConfiguration and routes to) to openapi.yaml: a
// browser may use every documented method and send every documented request header, so no
// documented operation is one API Gateway answers 404 or a preflight refuses.
func TestCORSCoversTheDocument(t *testing.T) {
	cors := resources.HTTPAPICORS()
	headers := 0
	for _, o := range documentedOperations(t) {
		assert.Contains(t, cors.AllowMethods, o.method, "%s: method not in resources.HTTPAPICORS().AllowMethods", o)
		for _, h := range o.headers {
			headers++
			assert.Contains(t, cors.AllowHeaders, strings.ToLower(h), "%s: header %s not in resources.HTTPAPICORS().AllowHeaders", o, h)
		}
	}
	assert.NotZero(t, headers, "openapi.yaml documents no request header")
}
