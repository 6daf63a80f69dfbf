package templatecheck

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/notify"
)

// CheckEventBus names the check of NetAuto's events (docs/events.md).
const CheckEventBus = "eventbus"

// EventBusParameter is the template parameter that names the bus (NET_AUTO_EVENT_BUS).
const EventBusParameter = "EventBusName"

// eventBusARN is the one resource events:PutEvents may be granted on.
const eventBusARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${" + EventBusParameter + "}"

// checkEventBus holds the functions that send events to the bus they are told of: each function
// that reads NET_AUTO_EVENT_BUS gets it from the EventBusName parameter and may events:PutEvents
// on that bus only, as source netauto only; no other function may put events.
func checkEventBus(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckEventBus, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if _, ok := t.Parameters[EventBusParameter]; !ok {
		bad("Parameters", "no %s parameter (NET_AUTO_EVENT_BUS)", EventBusParameter)
	}
	for _, id := range functionIDs(t) {
		name, known := opts.FunctionNames[id]
		sends := known && readsVar(name, config.EnvEventBus)
		if sends {
			if fn, arg, _ := intrinsic(functionEnv(t, t.Resources[id])[config.EnvEventBus]); fn != "Ref" || arg != EventBusParameter {
				bad("Resources."+id+".Properties.Environment.Variables."+config.EnvEventBus, "want !Ref %s", EventBusParameter)
			}
		}
		path := "Resources." + id + ".Properties.Policies"
		granted := false
		for _, st := range statements(t.Resources[id].Properties["Policies"]) {
			if !slices.ContainsFunc(toStrings(st["Action"]), func(a string) bool {
				a = strings.ToLower(a)
				return a == "events:putevents" || a == "events:*" || a == "*"
			}) {
				continue
			}
			sid, _ := st["Sid"].(string)
			if !sends {
				bad(path, "statement %q lets the %s function put events, but it does not read %s", sid, name, config.EnvEventBus)
				continue
			}
			granted = true
			res := toSlice(st["Resource"])
			if res == nil && st["Resource"] != nil {
				res = []any{st["Resource"]}
			}
			if len(res) != 1 {
				bad(path, "statement %q grants events:PutEvents on %d resources, want only the bus %s", sid, len(res), eventBusARN)
			} else if fn, arg, _ := intrinsic(res[0]); fn != "Fn::Sub" || arg != eventBusARN {
				bad(path, "statement %q grants events:PutEvents on %v, want !Sub %q", sid, res[0], eventBusARN)
			}
			if !sourceCondition(st["Condition"]) {
				bad(path, "statement %q grants events:PutEvents without the condition StringEquals events:source %s", sid, notify.Source)
			}
		}
		if sends && !granted {
			bad(path, "the %s function reads %s but may not events:PutEvents on the bus", name, config.EnvEventBus)
		}
	}
	return ps
}

// sourceCondition reports whether cond is exactly StringEquals events:source netauto.
func sourceCondition(cond any) bool {
	m, ok := cond.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	eq, ok := m["StringEquals"].(map[string]any)
	if !ok || len(eq) != 1 {
		return false
	}
	v := toStrings(eq["events:source"])
	return len(v) == 1 && v[0] == notify.Source
}
