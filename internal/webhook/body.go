package webhook

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// EventTypes are the detail types a webhook's filter may name.
func EventTypes() []string {
	return []string{"Job Finished", "Output Changed", "Host Key Mismatch"}
}

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

// summaryDetail holds the detail fields a Slack summary reads, of any of the detail types.
type summaryDetail struct {
	JobID        string         `json:"job_id"`
	Status       string         `json:"status"`
	Command      string         `json:"command"`
	Counts       map[string]int `json:"counts"`
	Failed       []namedDevice  `json:"failed"`
	ChangedCount int            `json:"changed_count"`
	Changed      []namedDevice  `json:"changed"`
	Kind         string         `json:"kind"`
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Host         string         `json:"host"`
	Presented    string         `json:"presented_fingerprint"`
	Pinned       string         `json:"pinned_fingerprint"`
	UIPath       string         `json:"ui_path"`
	WebhookName  string         `json:"webhook_name"`
}

type namedDevice struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
}

// maxNamed is how many devices a Slack summary names before "and N more".
const maxNamed = 5

// SlackText is the one-line summary of ev with a link to its page in the UI (uiURL + ui_path),
// escaped as Slack's message text wants (&, <, >).
func SlackText(ev Event, uiURL string) string {
	var d summaryDetail
	_ = json.Unmarshal(ev.Detail, &d)
	var text string
	switch ev.DetailType {
	case "Job Finished":
		text = fmt.Sprintf("NetAuto job %s %s: %s — %s", d.JobID, d.Status, quote(d.Command), counts(d.Counts))
		if len(d.Failed) > 0 {
			text += "; not succeeded: " + names(d.Failed, sum(d.Counts)-d.Counts["succeeded"])
		}
	case "Output Changed":
		text = fmt.Sprintf("NetAuto job %s: the output of %s changed on %d device(s): %s", d.JobID, quote(d.Command), d.ChangedCount, names(d.Changed, d.ChangedCount))
	case "Host Key Mismatch":
		what := "device"
		if d.Kind == "jump_host" {
			what = "jump host"
		}
		text = fmt.Sprintf("NetAuto: %s %s (%s) presented SSH host key %s instead of its pinned %s; an admin must accept it or investigate", what, cmpOr(d.Name, d.ID), d.Host, d.Presented, d.Pinned)
		if d.UIPath == "" && d.JobID != "" {
			d.UIPath = "/?job=" + d.JobID
		}
	case DetailTypeTest:
		text = fmt.Sprintf("NetAuto: a test delivery to webhook %q", d.WebhookName)
	default:
		text = fmt.Sprintf("NetAuto event %q (%s)", ev.DetailType, ev.ID)
	}
	text = slackEscape(text)
	if d.UIPath != "" {
		if uiURL == "" {
			text += " " + slackEscape(d.UIPath)
		} else {
			text += " <" + slackEscape(strings.TrimSuffix(uiURL, "/")+d.UIPath) + "|open in NetAuto>"
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

// names lists up to maxNamed devices by name and counts the rest of total.
func names(ds []namedDevice, total int) string {
	var parts []string
	for _, d := range ds[:min(len(ds), maxNamed)] {
		parts = append(parts, cmpOr(d.Name, d.DeviceID))
	}
	out := strings.Join(parts, ", ")
	if rest := max(total, len(ds)) - len(parts); rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
