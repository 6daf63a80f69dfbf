package bulk

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/policy"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// Limits of a command sequence.
const (
	MaxCommands    = sshexec.MaxCommands
	MaxPrompts     = sshexec.MaxPrompts
	MaxExpectLen   = 256
	MaxAnswerLen   = 1024
	exactlyOneRule = "exactly one of command or commands"
	commandsField  = "commands"
)

// Prompt answers one question a command of a sequence asks: Expect is a literal the device's last
// output line ends with, or with Regex an anchored regular expression on that line. A Secret
// answer is write-only: it travels through the answer store, never in a message, a job or a run.
type Prompt struct {
	Expect string `json:"expect" dynamodbav:"expect"`
	Answer string `json:"answer,omitempty" dynamodbav:"answer,omitempty"`
	Secret bool   `json:"secret,omitempty" dynamodbav:"secret,omitempty"`
	Regex  bool   `json:"regex,omitempty" dynamodbav:"regex,omitempty"`
}

// Command is one command of a sequence with the prompts that answer its questions.
type Command struct {
	Command string   `json:"command" dynamodbav:"command"`
	Prompts []Prompt `json:"prompts,omitempty" dynamodbav:"prompts,omitempty"`
}

// AnswerStore keeps the secret prompt answers of a job from its acceptance to its end, outside
// the job's records and messages (in the secret store).
type AnswerStore interface {
	// PutAnswers stores the job's secret answers, in sequence order.
	PutAnswers(ctx context.Context, jobID string, answers []string) error
	// GetAnswers returns them; an error wrapping ErrAnswersGone when they are not stored.
	GetAnswers(ctx context.Context, jobID string) ([]string, error)
	// DeleteAnswers removes them; deleting answers that are not stored succeeds.
	DeleteAnswers(ctx context.Context, jobID string) error
}

// ErrAnswersGone means a job's secret answers are no longer stored (the job ended or was purged).
var ErrAnswersGone = errors.New("the job's secret answers are not stored")

// ReasonAnswersUnavailable is the reason of a run whose job's secret answers could not be read.
const ReasonAnswersUnavailable = "answers_unavailable"

// Summary is the one-line form of a sequence: its first command, plus " (+N more)".
func Summary(cmds []Command) string {
	if len(cmds) == 0 {
		return ""
	}
	return run.Summary(cmds[0].Command, len(cmds))
}

// SecretAnswers returns the answers of cmds' secret prompts, in order.
func SecretAnswers(cmds []Command) []string {
	var out []string
	for _, c := range cmds {
		for _, p := range c.Prompts {
			if p.Secret {
				out = append(out, p.Answer)
			}
		}
	}
	return out
}

// Redacted returns a copy of cmds whose secret prompts have no answer.
func Redacted(cmds []Command) []Command {
	if cmds == nil {
		return nil
	}
	out := make([]Command, len(cmds))
	for i, c := range cmds {
		out[i] = Command{Command: c.Command}
		if c.Prompts != nil {
			out[i].Prompts = make([]Prompt, len(c.Prompts))
			for j, p := range c.Prompts {
				if p.Secret {
					p.Answer = ""
				}
				out[i].Prompts[j] = p
			}
		}
	}
	return out
}

// WithAnswers returns a copy of the redacted cmds with the secret answers put back in order.
func WithAnswers(cmds []Command, answers []string) ([]Command, error) {
	out := Redacted(cmds)
	n := 0
	for i := range out {
		for j := range out[i].Prompts {
			if !out[i].Prompts[j].Secret {
				continue
			}
			if n >= len(answers) {
				return nil, fmt.Errorf("%d secret answers stored, the sequence has more", len(answers))
			}
			out[i].Prompts[j].Answer = answers[n]
			n++
		}
	}
	if n != len(answers) {
		return nil, fmt.Errorf("%d secret answers stored, the sequence has %d", len(answers), n)
	}
	return out, nil
}

// commandTexts returns the texts of cmds, in order.
func commandTexts(cmds []Command) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.Command
	}
	return out
}

// HasSecrets reports whether any prompt of cmds is secret.
func HasSecrets(cmds []Command) bool {
	for _, c := range cmds {
		for _, p := range c.Prompts {
			if p.Secret {
				return true
			}
		}
	}
	return false
}

// engineSequence is cmds as the SSH engine runs them.
func engineSequence(cmds []Command, stopOnError bool) sshexec.Sequence {
	seq := sshexec.Sequence{Commands: make([]sshexec.Command, len(cmds)), StopOnError: stopOnError}
	for i, c := range cmds {
		seq.Commands[i].Text = c.Command
		for _, p := range c.Prompts {
			seq.Commands[i].Prompts = append(seq.Commands[i].Prompts, sshexec.Prompt{Expect: p.Expect, Regex: p.Regex, Answer: p.Answer, Secret: p.Secret})
		}
	}
	return seq
}

// normalizeCommands validates and trims a request's commands, naming each rejected field by its
// path (commands[2].command, commands[0].prompts[1].expect). Redacted commands (a message's, a
// job's) have no secret answers.
func normalizeCommands(cmds []Command, redacted bool) error {
	if len(cmds) == 0 || len(cmds) > MaxCommands {
		return fieldErr(commandsField, "must hold 1 to %d commands", MaxCommands)
	}
	for i := range cmds {
		c := &cmds[i]
		at := fmt.Sprintf("commands[%d]", i)
		c.Command = strings.TrimRight(strings.TrimLeft(c.Command, " \t"), " \t\n")
		if err := validateCommandAt(at+".command", c.Command); err != nil {
			return err
		}
		if len(c.Prompts) > MaxPrompts {
			return fieldErr(at+".prompts", "must hold at most %d prompts", MaxPrompts)
		}
		for j, p := range c.Prompts {
			pat := fmt.Sprintf("%s.prompts[%d]", at, j)
			switch {
			case strings.TrimSpace(p.Expect) == "":
				return fieldErr(pat+".expect", "is required")
			case len(p.Expect) > MaxExpectLen:
				return fieldErr(pat+".expect", "must be at most %d bytes", MaxExpectLen)
			case !oneLine(p.Expect):
				return fieldErr(pat+".expect", "must be one line of valid UTF-8 without control characters")
			}
			if p.Regex {
				if _, err := regexp.Compile(`^(?:` + p.Expect + `)\s*$`); err != nil {
					return fieldErr(pat+".expect", "must be a valid regular expression (regex is true)")
				}
			}
			switch {
			case len(p.Answer) > MaxAnswerLen:
				return fieldErr(pat+".answer", "must be at most %d bytes", MaxAnswerLen)
			case !oneLine(p.Answer):
				return fieldErr(pat+".answer", "must be one line of valid UTF-8 without control characters")
			case p.Secret && !redacted && p.Answer == "":
				return fieldErr(pat+".answer", "is required when secret is true")
			case p.Secret && redacted && p.Answer != "":
				return fieldErr(pat+".answer", "must not be sent in clear")
			}
		}
	}
	return nil
}

func oneLine(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	})
}

// CheckSequence decides every command of cmds and every prompt answer (policy.Set.CheckAnswer)
// for role on platform p. It returns the first refusal and the field it names (commands[1],
// commands[1].prompts[0].answer; "" for the one command of a request that sent a command rather
// than a sequence), or an allowed decision.
func CheckSequence(set *policy.Set, cmds []Command, single bool, p string, role auth.Role) (policy.Decision, string) {
	var last policy.Decision
	for i, c := range cmds {
		d := set.Check(c.Command, p, role)
		if !d.Allowed {
			if single {
				return d, ""
			}
			return d, fmt.Sprintf("commands[%d]", i)
		}
		last = d
		for j, pr := range c.Prompts {
			if d := set.CheckAnswer(pr.Answer, p, role); !d.Allowed {
				d.Segment = "" // it may be a secret
				return d, fmt.Sprintf("commands[%d].prompts[%d].answer", i, j)
			}
		}
	}
	return last, ""
}
