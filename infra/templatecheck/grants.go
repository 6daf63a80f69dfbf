package templatecheck

// The grants check: calls each function's code makes on AWS that its policies must allow. IAM
// refuses a missing one only when the call is made, on AWS, so neither the local stack nor AWS's
// validators see it; this list holds the template to the code.

import (
	"fmt"
	"path"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/resources"
)

// CheckGrants is the name of the grants check.
const CheckGrants = "grants"

// grantTarget is what a grant must reach: a table's items (table), or the secrets under this
// stack's prefix and a folder (secret: "devices", "jump-hosts", ...).
type grantTarget struct{ kind, name string }

func table(id string) grantTarget    { return grantTarget{"table", id} }
func secret(dir string) grantTarget  { return grantTarget{"secret", dir} }
func (g grantTarget) String() string { return g.kind + " " + g.name }

// requiredGrant is one call a function's code makes, with where in the code it is made.
type requiredGrant struct {
	fn     config.Function
	action string
	on     grantTarget
	why    string
}

// requiredGrants are the calls the functions make that a template change could lose unnoticed:
// those outside the SAM policy templates a function is given whole, and those found missing once.
var requiredGrants = []requiredGrant{
	{config.API, "secretsmanager:CreateSecret", secret("jump-hosts"), "jumphost.Registry.Create stores the credential"},
	{config.API, "secretsmanager:PutSecretValue", secret("jump-hosts"), "jumphost.Registry.Update replaces the credential"},
	{config.API, "secretsmanager:DeleteSecret", secret("jump-hosts"), "jumphost.Registry.Delete"},
	{config.API, "secretsmanager:GetSecretValue", secret("devices"), "device.Inventory.storeSecret keeps the other half of a device's secret"},
	{config.API, "secretsmanager:GetSecretValue", secret("profiles"), "credprofile.Registry.Update keeps the other half of a profile's secret"},
	{config.API, "secretsmanager:PutSecretValue", secret("devices"), "device.Inventory stores a device's credential"},
	{config.Executor, "dynamodb:UpdateItem", table(resources.DevicesTable), "dynamo host key stores pin a learned key or record a pending one"},
	{config.Executor, "secretsmanager:GetSecretValue", secret("jump-hosts"), "jumphost.Registry.Credential, for each hop of a chain"},
	{config.Executor, "secretsmanager:GetSecretValue", secret("devices"), "device.Inventory.CredentialFor"},
	{config.Executor, "secretsmanager:GetSecretValue", secret("profiles"), "device.Inventory.CredentialFor, a device's profile"},
	{config.Executor, "dynamodb:BatchWriteItem", table(resources.RunsTable), "a batch's runs and outputs"},
	{config.Watchdog, "dynamodb:BatchGetItem", table(resources.JobsTable), "dynamo.JobStore.GetJob reads a job's items together"},
	{config.Scheduler, "dynamodb:Scan", table(resources.DevicesTable), "savedjob selects devices by site, platform or tags"},
	{config.Scheduler, "dynamodb:BatchGetItem", table(resources.JobsTable), "a job whose send failed is announced with its devices"},
	{config.Scheduler, "secretsmanager:DescribeSecret", secret("saved-jobs"), "secrets.Get tells a deleted secret from a refused read"},
	{config.Scheduler, "dynamodb:ConditionCheckItem", table(resources.SavedJobsTable), "dynamo.SavedJobStore.Claim checks the saved job is still due"},
	{config.Scheduler, "dynamodb:PutItem", table(resources.SavedJobsTable), "dynamo.SavedJobStore.Claim puts the claim of a due time"},
	{config.Notifier, "secretsmanager:DescribeSecret", secret("webhooks"), "secrets.Get tells a deleted secret from a refused read"},
}

// samTablePolicies are the actions of SAM's DynamoDB policy templates (policy_templates.json),
// granted on the table and its indexes.
var samTablePolicies = map[string][]string{
	"DynamoDBCrudPolicy": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
		"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"},
	"DynamoDBReadPolicy": {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"},
}

func checkGrants(t *Template, opts Options) []Problem {
	ids := map[config.Function]string{}
	for id, fn := range opts.FunctionNames {
		ids[fn] = id
	}
	var ps []Problem
	for _, g := range requiredGrants {
		id, ok := ids[g.fn]
		r, found := t.Resources[id]
		if !ok || !found {
			continue // the function is not in this template: the build and env checks say so
		}
		if !allows(r.Properties["Policies"], g.action, g.on) {
			ps = append(ps, Problem{Check: CheckGrants, Path: "Resources." + id + ".Properties.Policies",
				Msg: fmt.Sprintf("does not allow %s on %s, which the %s function calls (%s)", g.action, g.on, g.fn, g.why)})
		}
	}
	return ps
}

// allows reports whether an Allow statement or a SAM policy template under policies grants action
// on target.
func allows(policies any, action string, target grantTarget) bool {
	for _, p := range toSlice(policies) {
		for name, actions := range samTablePolicies {
			tn, ok := asMap(p)[name]
			if !ok {
				continue
			}
			if fn, arg, ok := intrinsic(asMap(tn)["TableName"]); ok && fn == "Ref" && target == table(fmt.Sprint(arg)) {
				for _, a := range actions {
					if strings.EqualFold(a, action) {
						return true
					}
				}
			}
		}
	}
	for _, st := range statements(policies) {
		if st["Effect"] != "Allow" || !actionGranted(st["Action"], action) {
			continue
		}
		for _, r := range resourceList(st["Resource"]) {
			for _, got := range targetsOf(r) {
				if got == target {
					return true
				}
			}
		}
	}
	return false
}

// actionGranted reports whether a statement's Action (a name, a list, wildcards allowed) names
// action. Unlike the audit check's, it gives nothing it cannot read.
func actionGranted(v any, action string) bool {
	for _, a := range toStrings(v) {
		if m, err := path.Match(strings.ToLower(a), strings.ToLower(action)); err == nil && m {
			return true
		}
	}
	return false
}

// targetsOf is what a statement's Resource value reaches: !GetAtt X.Arn a table's items, the
// stack's secrets ARN a folder of secrets; both branches of an Fn::If.
func targetsOf(v any) []grantTarget {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return nil
	}
	switch fn {
	case "Fn::GetAtt":
		l := toStrings(arg)
		if s, ok := arg.(string); ok {
			l = strings.SplitN(s, ".", 2)
		}
		if len(l) == 2 && l[1] == "Arn" {
			return []grantTarget{table(l[0])}
		}
	case "Fn::Sub":
		s, _ := arg.(string)
		const stackSecrets = ":secret:netauto/${AWS::StackName}/"
		if _, dir, ok := strings.Cut(s, stackSecrets); ok {
			if dir, ok := strings.CutSuffix(dir, "/*"); ok && !strings.ContainsAny(dir, "*?/") {
				return []grantTarget{secret(dir)}
			}
		}
	case "Fn::If":
		if l := toSlice(arg); len(l) == 3 {
			return append(targetsOf(l[1]), targetsOf(l[2])...)
		}
	}
	return nil
}
