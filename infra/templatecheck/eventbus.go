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

const (
	// eventBusARN is the bus EventBusParameter names.
	eventBusARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${" + EventBusParameter + "}"
	// ownBusName is the name of the stack's own bus, made when EventBusParameter is empty.
	ownBusName = "${AWS::StackName}-events"
	// ownBusARN is the stack's own bus, named by its ARN: a GetAtt from a role's policy would make
	// the bus, whose policy names the roles, depend on itself.
	ownBusARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/" + ownBusName
)

// checkEventBus holds NetAuto's events to a bus only NetAuto can put events on, because the
// notifier signs every source netauto event of its bus for the webhooks (docs/security.md):
//   - the stack makes its own bus (AWS::Events::EventBus named ownBusName, on the condition that
//     EventBusParameter is empty) whose policy denies events:PutEvents to every principal but the
//     roles of exactly the functions that publish;
//   - each function that reads NET_AUTO_EVENT_BUS gets that bus, or the named one, and may
//     events:PutEvents on it only, as source netauto only; no other function may put events;
//   - the notifier's rule listens on that same bus and exists only when events are not off (a SAM
//     EventBridgeRule event cannot be left out, and without a bus it listens on the default bus).
func checkEventBus(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckEventBus, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if _, ok := t.Parameters[EventBusParameter]; !ok {
		bad("Parameters", "no %s parameter (NET_AUTO_EVENT_BUS)", EventBusParameter)
	}
	busID, busCond := ownBus(t, bad)
	var senders, notifiers []string
	for _, id := range functionIDs(t) {
		name, known := opts.FunctionNames[id]
		if known && name == config.Notifier {
			notifiers = append(notifiers, id)
		}
		sends := known && readsVar(name, config.EnvEventBus)
		if sends {
			senders = append(senders, id)
			if v := functionEnv(t, t.Resources[id])[config.EnvEventBus]; busID != "" && !isBusChoice(v, busCond, busID) {
				bad("Resources."+id+".Properties.Environment.Variables."+config.EnvEventBus,
					"want !If [%s, !Ref %s, !Ref %s], got %v", busCond, busID, EventBusParameter, v)
			}
		}
		path := "Resources." + id + ".Properties.Policies"
		granted := false
		for _, st := range statements(t.Resources[id].Properties["Policies"]) {
			if !grantsPutEvents(st) {
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
				bad(path, "statement %q grants events:PutEvents on %d resources, want only the bus", sid, len(res))
			} else if busID != "" && !isBusARNChoice(res[0], busCond) {
				bad(path, "statement %q grants events:PutEvents on %v, want !If [%s, !Sub %q, !Sub %q]", sid, res[0], busCond, ownBusARN, eventBusARN)
			}
			if !sourceCondition(st["Condition"]) {
				bad(path, "statement %q grants events:PutEvents without the condition StringEquals events:source %s", sid, notify.Source)
			}
		}
		if sends && !granted {
			bad(path, "the %s function reads %s but may not events:PutEvents on the bus", name, config.EnvEventBus)
		}
		for _, ev := range sortedKeys(asMap(t.Resources[id].Properties["Events"])) {
			e := asMap(asMap(t.Resources[id].Properties["Events"])[ev])
			if (e["Type"] == "EventBridgeRule" || e["Type"] == "CloudWatchEvent") && matchesNetAuto(asMap(e["Properties"])["Pattern"]) {
				bad("Resources."+id+".Properties.Events."+ev, "a SAM %s event takes NetAuto's events: it cannot be left out when events are off, "+
					"when it names no bus it listens on the default bus, where any principal may put source %s; declare an AWS::Events::Rule", e["Type"], notify.Source)
			}
		}
	}
	if busID != "" {
		ps = append(ps, checkBusPolicy(t, busID, senders)...)
	}
	ps = append(ps, checkNotifierRules(t, busID, busCond, notifiers)...)
	return ps
}

// ownBus finds the stack's own bus and the condition it is made on, reporting what is wrong.
func ownBus(t *Template, bad func(path, format string, args ...any)) (id, cond string) {
	var ids []string
	for _, rid := range sortedKeys(t.Resources) {
		if t.Resources[rid].Type == "AWS::Events::EventBus" {
			ids = append(ids, rid)
		}
	}
	if len(ids) != 1 {
		bad("Resources", "want one AWS::Events::EventBus, the stack's own bus for NetAuto's events (made when %s is empty), found %d: "+
			"on a bus others may put events on, the notifier signs their forgeries", EventBusParameter, len(ids))
		return "", ""
	}
	id = ids[0]
	r := t.Resources[id]
	if fn, arg, _ := intrinsic(r.Properties["Name"]); fn != "Fn::Sub" || arg != ownBusName {
		bad("Resources."+id+".Properties.Name", "want !Sub %q", ownBusName)
	}
	if !equalsParam(t.Conditions[r.Condition], "") {
		bad("Resources."+id+".Condition", "want a condition that is !Equals [!Ref %s, \"\"], got %q", EventBusParameter, r.Condition)
	}
	return id, r.Condition
}

// checkBusPolicy holds the bus's policy to one statement that denies events:PutEvents to every
// principal whose aws:PrincipalArn is not the role of one of the senders, and nothing that allows.
func checkBusPolicy(t *Template, busID string, senders []string) []Problem {
	var ps []Problem
	path := "Resources." + busID + ".Properties.Policy"
	bad := func(format string, args ...any) {
		ps = append(ps, Problem{Check: CheckEventBus, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	var denies []map[string]any
	for _, st := range statements(t.Resources[busID].Properties["Policy"]) {
		if !grantsPutEvents(st) {
			continue
		}
		if st["Effect"] != "Deny" {
			bad("statement %q allows events:PutEvents; the functions' roles are allowed by their own policies", st["Sid"])
			continue
		}
		denies = append(denies, st)
	}
	if len(denies) != 1 {
		bad("want one statement that denies events:PutEvents to all but the publishing functions' roles, found %d", len(denies))
		return ps
	}
	st := denies[0]
	if p := st["Principal"]; p != "*" && !slices.Equal(toStrings(asMap(p)["AWS"]), []string{"*"}) {
		bad("the deny's Principal is %v, want \"*\"", p)
	}
	if fn, arg, _ := intrinsic(st["Resource"]); fn != "Fn::Sub" || arg != ownBusARN {
		bad("the deny's Resource is %v, want !Sub %q", st["Resource"], ownBusARN)
	}
	cond := asMap(st["Condition"])
	var exempt []any
	if len(cond) == 1 {
		keys := asMap(cond["ArnNotEquals"])
		if len(keys) == 1 {
			for k, v := range keys {
				if strings.EqualFold(k, "aws:PrincipalArn") {
					exempt = toSlice(v)
					if exempt == nil {
						exempt = []any{v}
					}
				}
			}
		}
	}
	if exempt == nil {
		bad("the deny's Condition is %v, want only ArnNotEquals aws:PrincipalArn [the publishing functions' role ARNs]", st["Condition"])
		return ps
	}
	var got []string
	for _, v := range exempt {
		res, attr, ok := getAtt(v)
		if !ok || attr != "Arn" {
			bad("the deny exempts %v, want only !GetAtt <Function>Role.Arn of the functions that publish", v)
			continue
		}
		got = append(got, res)
	}
	for _, id := range senders {
		if !slices.Contains(got, id+"Role") {
			bad("the deny does not exempt %sRole: the %s function reads %s but could not publish", id, id, config.EnvEventBus)
		}
	}
	for _, role := range got {
		if !slices.ContainsFunc(senders, func(id string) bool { return id+"Role" == role }) {
			bad("the deny exempts %s, which is not the role of a function that publishes: it could forge NetAuto's events", role)
		}
	}
	return ps
}

// checkNotifierRules holds every rule that takes NetAuto's events to the bus the functions publish
// to and to events being on, and wants one that targets the notifier.
func checkNotifierRules(t *Template, busID, busCond string, notifiers []string) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckEventBus, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	toNotifier := false
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if r.Type != "AWS::Events::Rule" || !matchesNetAuto(r.Properties["EventPattern"]) {
			continue
		}
		path := "Resources." + id
		if !excludesOff(t, t.Conditions[r.Condition]) {
			bad(path+".Condition", "the rule takes NetAuto's events also when %s is off (condition %q): then it listens on a bus NetAuto does not publish to; want a condition that is false for off",
				EventBusParameter, r.Condition)
		}
		if busID != "" && !isBusChoice(r.Properties["EventBusName"], busCond, busID) {
			bad(path+".Properties.EventBusName", "the rule listens on %v, want !If [%s, !Ref %s, !Ref %s] (no bus is the default bus, where any principal may put source %s)",
				r.Properties["EventBusName"], busCond, busID, EventBusParameter, notify.Source)
		}
		for _, tg := range toSlice(r.Properties["Targets"]) {
			if res, attr, ok := getAtt(asMap(tg)["Arn"]); ok && attr == "Arn" && slices.Contains(notifiers, res) {
				toNotifier = true
			}
		}
	}
	if len(notifiers) > 0 && !toNotifier {
		bad("Resources", "no AWS::Events::Rule takes NetAuto's events (source %s) to the notifier on the bus the functions publish to", notify.Source)
	}
	return ps
}

// grantsPutEvents reports whether an IAM statement's actions cover events:PutEvents.
func grantsPutEvents(st map[string]any) bool {
	return slices.ContainsFunc(toStrings(st["Action"]), func(a string) bool {
		a = strings.ToLower(a)
		return a == "events:putevents" || a == "events:*" || a == "*"
	})
}

// matchesNetAuto reports whether an event pattern names NetAuto's source.
func matchesNetAuto(pattern any) bool {
	return slices.Contains(toStrings(asMap(pattern)["source"]), notify.Source)
}

// isBusChoice reports whether v is !If [cond, !Ref busID, !Ref EventBusParameter].
func isBusChoice(v any, cond, busID string) bool {
	return isChoice(v, cond, "Ref", busID, "Ref", EventBusParameter)
}

// isBusARNChoice reports whether v is !If [cond, !Sub ownBusARN, !Sub eventBusARN].
func isBusARNChoice(v any, cond string) bool {
	return isChoice(v, cond, "Fn::Sub", ownBusARN, "Fn::Sub", eventBusARN)
}

// isChoice reports whether v is !If [cond, {fn1: arg1}, {fn2: arg2}].
func isChoice(v any, cond, fn1 string, arg1 any, fn2 string, arg2 any) bool {
	fn, arg, _ := intrinsic(v)
	a := toSlice(arg)
	if fn != "Fn::If" || len(a) != 3 || a[0] != cond {
		return false
	}
	f1, x1, _ := intrinsic(a[1])
	f2, x2, _ := intrinsic(a[2])
	return f1 == fn1 && x1 == arg1 && f2 == fn2 && x2 == arg2
}

// getAtt returns the resource and attribute of a Fn::GetAtt in either form.
func getAtt(v any) (res, attr string, ok bool) {
	fn, arg, _ := intrinsic(v)
	if fn != "Fn::GetAtt" {
		return "", "", false
	}
	parts := toStrings(arg)
	if s, isString := arg.(string); isString {
		parts = strings.SplitN(s, ".", 2)
	}
	if len(parts) != 2 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// equalsParam reports whether a condition is !Equals [!Ref EventBusParameter, value] (either order).
func equalsParam(cond any, value string) bool {
	fn, arg, _ := intrinsic(cond)
	a := toSlice(arg)
	if fn != "Fn::Equals" || len(a) != 2 {
		return false
	}
	for i := range 2 {
		if f, x, _ := intrinsic(a[i]); f == "Ref" && x == EventBusParameter && a[1-i] == value {
			return true
		}
	}
	return false
}

// excludesOff reports whether a condition is false when EventBusParameter is off: !Not of a
// condition (or an inline !Equals) that is !Equals [!Ref EventBusParameter, off].
func excludesOff(t *Template, cond any) bool {
	fn, arg, _ := intrinsic(cond)
	a := toSlice(arg)
	if fn != "Fn::Not" || len(a) != 1 {
		return false
	}
	inner := a[0]
	if f, x, _ := intrinsic(inner); f == "Condition" {
		name, _ := x.(string)
		inner = t.Conditions[name]
	}
	return equalsParam(inner, "off")
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
