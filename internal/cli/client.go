package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/apiwire"
)

// APIError is an error answer of the API (apiwire.ErrorBody) with its HTTP status.
type APIError struct {
	// Status is the HTTP status code.
	Status  int
	Code    string
	Message string
	Field   string
	Details []apiwire.FieldError
	// UnknownIDs lists the device ids a run or bulk request named that are not in the inventory.
	UnknownIDs []string
	// Rule is the policy rule that refused a command (code command_denied).
	Rule string
	// Devices lists the devices a refused command was denied on, or the devices that still use
	// a credential profile that cannot be deleted.
	Devices []string
}

// Error formats the error as "field: message (code)".
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	b.WriteString(msg)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	for _, d := range e.Details {
		if d.Field == e.Field && d.Message == e.Message {
			continue // the same as the headline
		}
		fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Message)
	}
	if len(e.UnknownIDs) > 0 {
		b.WriteString("\n  unknown devices: " + strings.Join(e.UnknownIDs, ", "))
	}
	if e.Rule != "" {
		b.WriteString("\n  rule: " + terminalSafeString(e.Rule))
	}
	if len(e.Devices) > 0 {
		label := "devices"
		if e.Code == "command_denied" {
			label = "denied devices"
		}
		b.WriteString("\n  " + label + ": " + terminalSafeString(strings.Join(e.Devices, ", ")))
	}
	if e.Status == http.StatusUnauthorized {
		b.WriteString("\n  the token is missing, expired or invalid: pass --token, set NET_AUTO_TOKEN or run `netauto login`")
	}
	return b.String()
}

// Client calls the NetAuto HTTPS API.
type Client struct {
	// Base is the API's base URL without /v1, e.g. http://127.0.0.1:8080.
	Base  string
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for base with the bearer token.
func NewClient(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// Do sends a request to path (under /v1) and decodes a JSON answer into out (when not nil). A
// body that is []byte is sent as is with contentType; anything else is encoded as JSON.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any, contentType string, out any) error {
	resp, err := c.send(ctx, method, path, query, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", method, path, err)
	}
	return nil
}

// DoRaw is Do for answers that callers read themselves, such as run output. The caller closes
// the body.
func (c *Client) DoRaw(ctx context.Context, method, path string) (*http.Response, error) {
	return c.send(ctx, method, path, nil, nil, "")
}

// ImportError is the answer to an import that wrote nothing (422 or 409): the error and the
// per-row results.
type ImportError struct {
	*APIError
	Result apiwire.ImportResult
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any, contentType string) (*http.Response, error) {
	u := c.Base + "/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
		contentType = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	// One shape reads every error answer: apiwire.ErrorBody, UnknownDevicesBody and ImportRejected.
	var eb struct {
		Error      *apiwire.Error        `json:"error"`
		UnknownIDs []string              `json:"unknown_ids"`
		DeviceIDs  []string              `json:"device_ids"`
		Result     *apiwire.ImportResult `json:"result"`
	}
	if json.Unmarshal(data, &eb) != nil || eb.Error == nil {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &APIError{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: msg}
	}
	ae := &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field,
		Details: eb.Error.Details, UnknownIDs: eb.UnknownIDs, Rule: eb.Error.Rule, Devices: eb.Error.Devices}
	if len(ae.Devices) == 0 {
		ae.Devices = eb.DeviceIDs
	}
	if eb.Result != nil {
		return nil, &ImportError{APIError: ae, Result: *eb.Result}
	}
	return nil, ae
}

// isStatus reports whether err is an API error with the given HTTP status.
func isStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// Unwrap returns the API error, so errors.As finds it.
func (e *ImportError) Unwrap() error { return e.APIError }
