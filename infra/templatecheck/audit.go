package templatecheck

import (
	"fmt"
	"path"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/resources"
)

// CheckAudit names the audit trail's IAM check: the audit table is append-only.
const CheckAudit = "audit"

// auditMutations are the actions that would let a function change or remove an audit entry (or
// the table, or how long entries live). None may be granted on the audit table.
var auditMutations = []string{
	"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
	"dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
	"dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive",
}

// mutatingSAMPolicies are the SAM policy templates that grant some of auditMutations on their
// TableName.
var mutatingSAMPolicies = map[string]bool{
	"DynamoDBCrudPolicy": true, "DynamoDBWritePolicy": true,
	"DynamoDBReconfigurePolicy": true, "DynamoDBRestoreFromBackupPolicy": true,
}

// checkAudit enforces the audit table's IAM guarantee over every IAM grant in the template (the
// functions' Policies, and any IAM role, policy or managed policy resource): nothing grants an
// action of auditMutations on a resource that could be the audit table, whether by name, by a
// wildcard action (dynamodb:*, dynamodb:*Item) or resource ("*", table/*), by a mutating SAM
// policy template or by an AWS managed policy. Every function that writes the trail may put
// entries, and the api may query them.
func checkAudit(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckAudit, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	auditTable, _ := resources.TableByID(resources.AuditTable)
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		var grants any
		var where string
		switch r.Type {
		case "AWS::Serverless::Function":
			grants, where = r.Properties["Policies"], "Resources."+id+".Properties.Policies"
		case "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			grants, where = r.Properties, "Resources."+id+".Properties"
		default:
			continue
		}
		for _, p := range auditGrantProblems(grants) {
			bad(where, "%s", p)
		}
		name, ok := opts.FunctionNames[id]
		if r.Type != "AWS::Serverless::Function" || !ok || !readsVar(name, auditTable.EnvVar) {
			continue
		}
		if !grantsOnAudit(grants, "dynamodb:PutItem", false) {
			bad(where, "the %s function writes the audit trail but is not granted dynamodb:PutItem on %s", name, resources.AuditTable)
		}
		if name == config.API {
			if !grantsOnAudit(grants, "dynamodb:Query", false) || !grantsOnAudit(grants, "dynamodb:Query", true) {
				bad(where, "the api serves GET /v1/audit but is not granted dynamodb:Query on %s and its indexes", resources.AuditTable)
			}
		}
	}
	return ps
}

func readsVar(fn config.Function, name string) bool {
	for _, v := range config.Vars(fn) {
		if v.Name == name {
			return true
		}
	}
	return false
}

// auditGrantProblems describes every grant under v that could change or remove audit entries.
func auditGrantProblems(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if dangerousManagedPolicy(x) {
				out = append(out, fmt.Sprintf("managed policy %q may update or delete audit entries", x))
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if _, ok := x["Effect"]; ok {
				if p := statementProblem(x); p != "" {
					out = append(out, p)
				}
				return
			}
			for k, e := range x {
				if mutatingSAMPolicies[k] {
					if tableName := asMap(e)["TableName"]; mayBeAuditTable(tableName) || !isRefToOtherTable(tableName) {
						out = append(out, fmt.Sprintf("SAM policy %s on %v grants update or delete on the audit table", k, tableName))
					}
					continue
				}
				if k == "ManagedPolicyArns" {
					for _, a := range toSlice(e) {
						if s, ok := a.(string); ok && dangerousManagedPolicy(s) {
							out = append(out, fmt.Sprintf("managed policy %q may update or delete audit entries", s))
						} else if !ok {
							out = append(out, fmt.Sprintf("managed policy %v cannot be checked", a))
						}
					}
					continue
				}
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// dangerousManagedPolicy reports whether an AWS managed policy (by name or ARN) may write
// DynamoDB items.
func dangerousManagedPolicy(s string) bool {
	n := strings.ToLower(s[strings.LastIndex(s, "/")+1:])
	switch {
	case strings.Contains(n, "administrator"), strings.Contains(n, "poweruser"):
		return true
	case strings.Contains(n, "dynamodb"):
		return !strings.Contains(n, "readonly")
	}
	return false
}

// statementProblem describes what an Allow statement grants on the audit table among
// auditMutations ("" when nothing).
func statementProblem(st map[string]any) string {
	if st["Effect"] != "Allow" {
		return ""
	}
	sid, _ := st["Sid"].(string)
	if sid == "" {
		sid = "(no Sid)"
	}
	var granted []string
	if na, ok := st["NotAction"]; ok {
		for _, m := range auditMutations {
			if !actionsMatch(na, m) {
				granted = append(granted, m)
			}
		}
	} else {
		for _, m := range auditMutations {
			if actionsMatch(st["Action"], m) {
				granted = append(granted, m)
			}
		}
	}
	if len(granted) == 0 {
		return ""
	}
	if _, ok := st["NotResource"]; ok {
		return fmt.Sprintf("statement %s grants %s with NotResource, which may include the audit table", sid, strings.Join(granted, ", "))
	}
	for _, r := range resourceList(st["Resource"]) {
		if mayBeAuditTable(r) {
			return fmt.Sprintf("statement %s grants %s on %v, which may be the audit table", sid, strings.Join(granted, ", "), r)
		}
	}
	return ""
}

// actionsMatch reports whether an Action value (a pattern or list of patterns, IAM wildcards
// * and ?, case-insensitive) matches action. A value that is not plain strings matches.
func actionsMatch(v any, action string) bool {
	list := toSlice(v)
	if s, ok := v.(string); ok {
		list = []any{s}
	}
	if list == nil {
		return v != nil
	}
	for _, a := range list {
		s, ok := a.(string)
		if !ok {
			return true
		}
		if m, err := path.Match(strings.ToLower(s), strings.ToLower(action)); err != nil || m {
			return true
		}
	}
	return false
}

func resourceList(v any) []any {
	if l := toSlice(v); l != nil {
		return l
	}
	return []any{v}
}

// mayBeAuditTable reports whether a Resource (or TableName) value could name the audit table or
// one of its indexes: a reference to it, "*", or a DynamoDB ARN whose table name is a wildcard.
// An intrinsic it cannot read counts as the audit table.
func mayBeAuditTable(v any) bool {
	if s, ok := v.(string); ok {
		return textMayBeAuditTable(s)
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		return true
	}
	switch fn {
	case "Ref":
		return arg == resources.AuditTable
	case "Fn::GetAtt":
		l := toSlice(arg)
		if s, ok := arg.(string); ok {
			res, _, _ := strings.Cut(s, ".")
			return res == resources.AuditTable
		}
		return len(l) == 0 || l[0] == resources.AuditTable
	case "Fn::Sub":
		if s, ok := arg.(string); ok {
			return textMayBeAuditTable(s)
		}
		l := toSlice(arg)
		if len(l) == 2 {
			s, _ := l[0].(string)
			vars := map[string]bool{}
			referencedIDs(l[1], vars)
			return textMayBeAuditTable(s) || vars[resources.AuditTable]
		}
		return true
	case "Fn::If":
		l := toSlice(arg)
		return len(l) != 3 || mayBeAuditTable(l[1]) || mayBeAuditTable(l[2])
	}
	return true
}

func textMayBeAuditTable(s string) bool {
	if s == "*" || strings.Contains(s, resources.AuditTable) {
		return true
	}
	if !strings.Contains(s, ":dynamodb:") && !strings.HasPrefix(s, "arn:*") {
		return false
	}
	_, name, found := strings.Cut(s, ":table/")
	if !found {
		return strings.Contains(s, "*") // arn:aws:dynamodb:*:*:* and the like
	}
	name, _, _ = strings.Cut(name, "/")
	return strings.ContainsAny(name, "*?")
}

// isRefToOtherTable reports whether a SAM policy template's TableName is a Ref to a table other
// than the audit table.
func isRefToOtherTable(v any) bool {
	fn, arg, ok := intrinsic(v)
	return ok && fn == "Ref" && arg != resources.AuditTable
}

// grantsOnAudit reports whether an Allow statement under v grants action on the audit table (or,
// with index, on its indexes).
func grantsOnAudit(v any, action string, index bool) bool {
	for _, st := range statements(v) {
		if st["Effect"] != "Allow" || !actionsMatch(st["Action"], action) {
			continue
		}
		for _, r := range resourceList(st["Resource"]) {
			fn, arg, ok := intrinsic(r)
			switch {
			case !ok:
			case !index && fn == "Fn::GetAtt":
				if l := toSlice(arg); len(l) == 2 && l[0] == resources.AuditTable && l[1] == "Arn" {
					return true
				}
			case index && fn == "Fn::Sub":
				if s, ok := arg.(string); ok && strings.HasPrefix(s, "${"+resources.AuditTable+".Arn}/index/") {
					return true
				}
			}
		}
	}
	return false
}
