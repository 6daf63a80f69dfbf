package resources

// HTTPAPI is the logical ID of the HTTP API in template.yaml.
const HTTPAPI = "HttpApi"

// CORS is the HTTP API's cross-origin resource sharing configuration: what template.yaml's
// HttpApi CorsConfiguration declares and what the local gateway answers with. The allowed
// origins are not part of it, since they belong to the deployment: the UI's CloudFront domain
// in AWS, the configured UI origins locally.
type CORS struct {
	// AllowMethods are the methods a cross-origin request may use (Access-Control-Allow-Methods).
	AllowMethods []string
	// AllowHeaders are the request headers a cross-origin request may send, lower case
	// (Access-Control-Allow-Headers).
	AllowHeaders []string
	// ExposeHeaders are the response headers a cross-origin page may read beyond the
	// CORS-safelisted ones, lower case (Access-Control-Expose-Headers).
	ExposeHeaders []string
	// MaxAgeSeconds is how long a browser may cache a preflight's answer (Access-Control-Max-Age).
	MaxAgeSeconds int
}

// HTTPAPICORS returns the HTTP API's CORS configuration: every method and request header
// openapi.yaml documents (the API's tests hold it to the document). The UI sends the bearer
// token and JSON or CSV bodies (every call is preflighted), uses GET, POST, PUT (the policy and
// a platform's noise filters), PATCH and DELETE, and reads a run output's X-Output-Truncated and
// X-Output-Bytes; If-Match and the other exposed headers are for other browser clients.
func HTTPAPICORS() CORS {
	return CORS{
		AllowMethods:  []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
		AllowHeaders:  []string{"authorization", "content-type", "if-match"},
		ExposeHeaders: []string{"location", "etag", "x-output-truncated", "x-output-bytes", "x-run-status"},
		MaxAgeSeconds: 600,
	}
}
