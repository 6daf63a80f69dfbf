package webhook

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/netauto/netauto/internal/notify"
)

// EventTypes are the detail types a webhook's filter may name: those NetAuto sends.
func EventTypes() []string { return notify.DetailTypes() }

// Body returns what a webhook of format f posts for ev: the event itself (json) or a Slack
// message (slack) whose link starts with uiURL.
func Body(f Format, ev Event, uiURL string) ([]byte, error) {
	if len(ev.Detail) == 0 {
		ev.Detail = json.RawMessage("{}")
	}
	if ev.Resources == nil {
		ev.Resources = []string{}
	}
	if f == FormatSlack {
		return json.Marshal(map[string]string{"text": SlackText(ev, uiURL)})
	}
	return json.Marshal(ev)
}

// maxNamed is how many devices a Slack summary names before "and N more".
const maxNamed = 5

// SlackText is the one-line summary of ev with a link to its page in the UI (uiURL + ui_path),
// escaped as Slack's message text wants (&, <, >).
func SlackText(ev Event, uiURL string) string {
	var text, uiPath string
	switch ev.DetailType {
	case notify.DetailTypeJobFinished:
		var d notify.JobFinished
		_ = json.Unmarshal(ev.Detail, &d)
		text = fmt.Sprintf("NetAuto job %s %s: %s — %s", d.JobID, d.Status, quote(d.Command), counts(d.Counts))
		if len(d.Failed) > 0 {
			names := make([]string, len(d.Failed))
			for i, f := range d.Failed {
				names[i] = cmpOr(f.Name, f.DeviceID)
			}
			text += "; not succeeded: " + listed(names, sum(d.Counts)-d.Counts["succeeded"])
		}
		uiPath = d.UIPath
	case notify.DetailTypeOutputChanged:
		var d notify.OutputChanged
		_ = json.Unmarshal(ev.Detail, &d)
		names := make([]string, len(d.Changed))
		for i, c := range d.Changed {
			names[i] = cmpOr(c.Name, c.DeviceID)
		}
		text = fmt.Sprintf("NetAuto job %s: the output of %s changed on %d device(s): %s", d.JobID, quote(d.Command), d.ChangedCount, listed(names, d.ChangedCount))
		uiPath = d.UIPath
	case notify.DetailTypeHostKeyMismatch:
		var d notify.HostKeyMismatch
		_ = json.Unmarshal(ev.Detail, &d)
		what := "device"
		if d.Kind == notify.KindJumpHost {
			what = "jump host"
		}
		text = fmt.Sprintf("NetAuto: %s %s (%s) presented SSH host key %s instead of its pinned %s; an admin must accept it or investigate", what, cmpOr(d.Name, d.ID), d.Host, d.PresentedFingerprint, d.PinnedFingerprint)
		if d.JobID != "" {
			uiPath = notify.JobUIPath(d.JobID)
		}
	case DetailTypeTest:
		var d struct {
			WebhookName string `json:"webhook_name"`
		}
		_ = json.Unmarshal(ev.Detail, &d)
		text = fmt.Sprintf("NetAuto: a test delivery to webhook %q", d.WebhookName)
	default:
		text = fmt.Sprintf("NetAuto event %q (%s)", ev.DetailType, ev.ID)
	}
	text = slackEscape(text)
	if uiPath != "" {
		if uiURL == "" {
			text += " " + slackEscape(uiPath)
		} else {
			text += " <" + slackEscape(strings.TrimSuffix(uiURL, "/")+uiPath) + "|open in NetAuto>"
		}
	}
	return text
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func quote(s string) string { return "`" + strings.ReplaceAll(s, "`", "'") + "`" }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// counts lists a job's devices by status, most first: "47 succeeded, 3 failed".
func counts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	if len(parts) == 0 {
		return "no devices"
	}
	return strings.Join(parts, ", ")
}

// listed names up to maxNamed devices and counts the rest of total.
func listed(names []string, total int) string {
	shown := names[:min(len(names), maxNamed)]
	out := strings.Join(shown, ", ")
	if rest := max(total, len(names)) - len(shown); rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
