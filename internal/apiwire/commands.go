package apiwire

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// CommandItem is one command of a sequence (POST /v1/runs and /v1/bulk "commands", a job's
// "commands"): a plain string in a request stands for {"command": "..."}; it is always sent back
// as the object.
type CommandItem struct {
	Command string   `json:"command"`
	Prompts []Prompt `json:"prompts,omitempty"`
}

// UnmarshalJSON accepts a string or an object without unknown fields.
func (c *CommandItem) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*c = CommandItem{}
		return json.Unmarshal(b, &c.Command)
	}
	if len(b) == 0 || b[0] != '{' {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[CommandItem]()}
	}
	type plain CommandItem
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*c = CommandItem(p)
	return nil
}

// jsonKind names the kind of the JSON value b, as json.UnmarshalTypeError.Value does.
func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "value"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == 'n':
		return "null"
	default:
		return "number"
	}
}

// Prompt answers one question a command asks: expect is a literal the device's last output line
// ends with (or, with regex, an anchored regular expression on that line) and answer what is sent.
// A secret answer is write-only: it is never sent back (answer is left out).
type Prompt struct {
	Expect string  `json:"expect"`
	Answer *string `json:"answer,omitempty"`
	Secret bool    `json:"secret,omitempty"`
	Regex  bool    `json:"regex,omitempty"`
}

// RunCommand is the outcome of one command of a run's sequence: one per command started.
type RunCommand struct {
	Command    string `json:"command"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Bytes      int64  `json:"bytes"`
}
