// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: one JSON object per line
// on the function's log stream, which CloudWatch turns into metrics without any API call.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every NetAuto metric.
const Namespace = "NetAuto"

// Unit is a CloudWatch metric unit.
type Unit string

// Units NetAuto uses.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
)

// Metric is one named value, or several data points of one metric (Values, in place of Value:
// EMF takes an array of up to MaxValues, each a data point).
type Metric struct {
	Name   string
	Value  float64
	Values []float64
	Unit   Unit
}

// MaxValues is the most data points one EMF line may carry for a metric.
const MaxValues = 100

// Emitter writes EMF lines to w; it is safe for concurrent use.
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns an Emitter writing to w (os.Stdout in a Lambda function).
func New(w io.Writer) *Emitter {
	return &Emitter{w: w, now: time.Now}
}

// Emit writes one EMF line holding metrics under the given dimensions; properties are added as
// searchable fields that are not dimensions (ids, for example).
func (e *Emitter) Emit(dimensions map[string]string, properties map[string]any, ms ...Metric) error {
	if len(ms) == 0 {
		return fmt.Errorf("emit metrics: no metric given")
	}
	doc := map[string]any{}
	for k, v := range properties {
		doc[k] = v
	}
	dimNames := slices.Sorted(maps.Keys(dimensions))
	for _, k := range dimNames {
		doc[k] = dimensions[k]
	}
	defs := make([]map[string]string, 0, len(ms))
	for _, m := range ms {
		switch {
		case len(m.Values) > MaxValues:
			return fmt.Errorf("emit metrics: %s has %d values, at most %d", m.Name, len(m.Values), MaxValues)
		case m.Values != nil:
			doc[m.Name] = m.Values
		default:
			doc[m.Name] = m.Value
		}
		defs = append(defs, map[string]string{"Name": m.Name, "Unit": string(m.Unit)})
	}
	if dimNames == nil {
		dimNames = []string{}
	}
	doc["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{dimNames},
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}
