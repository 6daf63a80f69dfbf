// Package notifytest holds events to their documented JSON Schemas (docs/events/*.schema.json)
// for tests of the packages that emit or deliver them.
package notifytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/notify"
)

// SchemaFiles maps each detail type to its schema's file name under docs/events.
var SchemaFiles = map[string]string{
	notify.DetailTypeJobFinished:     "job-finished.schema.json",
	notify.DetailTypeOutputChanged:   "output-changed.schema.json",
	notify.DetailTypeHostKeyMismatch: "host-key-mismatch.schema.json",
}

// SchemaDir is the directory of the event schemas: docs/events at the repository's root.
func SchemaDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "events")
}

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

// Schemas compiles the event schemas once, with format assertions on (date-time is checked).
func Schemas() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		out := map[string]*jsonschema.Schema{}
		for dt, name := range SchemaFiles {
			path := filepath.Join(SchemaDir(), name)
			b, err := os.ReadFile(path)
			if err != nil {
				compileErr = fmt.Errorf("read schema %s: %w", name, err)
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				compileErr = fmt.Errorf("parse schema %s: %w", name, err)
				return
			}
			if err := c.AddResource(name, doc); err != nil {
				compileErr = fmt.Errorf("add schema %s: %w", name, err)
				return
			}
			s, err := c.Compile(name)
			if err != nil {
				compileErr = fmt.Errorf("compile schema %s: %w", name, err)
				return
			}
			out[dt] = s
		}
		compiled = out
	})
	return compiled, compileErr
}

// ValidateDetail reports whether detail (JSON) is valid for detailType's schema.
func ValidateDetail(detailType string, detail []byte) error {
	schemas, err := Schemas()
	if err != nil {
		return err
	}
	s, ok := schemas[detailType]
	if !ok {
		return fmt.Errorf("no schema for detail type %q", detailType)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(detail))
	if err != nil {
		return fmt.Errorf("parse %s detail: %w", detailType, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s detail: %w", detailType, err)
	}
	return nil
}

// RequireValid stops the test unless detail is valid for detailType's schema.
func RequireValid(tb testing.TB, detailType string, detail []byte) {
	tb.Helper()
	require.NoError(tb, ValidateDetail(detailType, detail), "detail: %s", detail)
}

// RequireValidEvent stops the test unless e's source-independent parts are valid: a known
// detail type and a detail that matches its schema.
func RequireValidEvent(tb testing.TB, e notify.Event) {
	tb.Helper()
	b, err := e.DetailJSON()
	require.NoError(tb, err)
	RequireValid(tb, e.DetailType, b)
}
