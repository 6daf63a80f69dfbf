package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/netauto/netauto/internal/apiwire"
)

// sequenceFlags build a command sequence from --command, --prompt, --prompt-regex and
// --secret-prompt in the order they are given: each prompt flag answers a question of the
// --command before it.
type sequenceFlags struct {
	items []apiwire.CommandItem
	// secrets are the secret prompts, in order, as (item, prompt) indexes: their answers are read
	// from stdin (or the terminal), never from the command line.
	secrets [][2]int
	stop    bool
}

// seqFlag is one of the sequence's flags: every Set appends to the shared sequence.
type seqFlag struct {
	s    *sequenceFlags
	name string
	set  func(s *sequenceFlags, v string) error
}

func (f *seqFlag) String() string { return "" }
func (f *seqFlag) Type() string   { return "string" }
func (f *seqFlag) Set(v string) error {
	if err := f.set(f.s, v); err != nil {
		return fmt.Errorf("--%s: %w", f.name, err)
	}
	return nil
}

func (s *sequenceFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.Var(&seqFlag{s: s, name: "command", set: func(s *sequenceFlags, v string) error {
		s.items = append(s.items, apiwire.CommandItem{Command: v})
		return nil
	}}, "command", "a command of the sequence (repeatable, run in order on one session)")
	fl.Var(&seqFlag{s: s, name: "prompt", set: func(s *sequenceFlags, v string) error { return s.prompt(v, false) }},
		"prompt", `EXPECT=ANSWER: answer a question of the --command before it whose last line ends with EXPECT (repeatable; "[confirm]=y", "[confirm]=" for just Enter)`)
	fl.Var(&seqFlag{s: s, name: "prompt-regex", set: func(s *sequenceFlags, v string) error { return s.prompt(v, true) }},
		"prompt-regex", "REGEX=ANSWER: as --prompt, REGEX matching the whole last line")
	fl.Var(&seqFlag{s: s, name: "secret-prompt", set: func(s *sequenceFlags, v string) error {
		if len(s.items) == 0 {
			return errors.New("must follow the --command it answers")
		}
		if strings.TrimSpace(v) == "" {
			return errors.New("needs the question's EXPECT text; the answer is read from stdin")
		}
		i := len(s.items) - 1
		s.items[i].Prompts = append(s.items[i].Prompts, apiwire.Prompt{Expect: v, Secret: true})
		s.secrets = append(s.secrets, [2]int{i, len(s.items[i].Prompts) - 1})
		return nil
	}}, "secret-prompt", "EXPECT: a question whose answer is secret, read from stdin (one line per --secret-prompt, in order) or asked on the terminal; never an argument")
	fl.BoolVar(&s.stop, "stop-on-error", false, "stop a device's sequence at its first failing command")
}

// prompt adds EXPECT=ANSWER (split at the last "=") to the last command.
func (s *sequenceFlags) prompt(v string, regex bool) error {
	if len(s.items) == 0 {
		return errors.New("must follow the --command it answers")
	}
	i := strings.LastIndex(v, "=")
	if i <= 0 {
		return errors.New(`want EXPECT=ANSWER, e.g. "[confirm]=y"`)
	}
	answer := v[i+1:]
	last := len(s.items) - 1
	s.items[last].Prompts = append(s.items[last].Prompts, apiwire.Prompt{Expect: v[:i], Answer: &answer, Regex: regex})
	return nil
}

// commands returns the sequence with its secret answers read from in (a terminal is asked, one
// question at a time, without echo); nil when no --command was given. positional is the command
// given as arguments, which a sequence excludes.
func (s *sequenceFlags) commands(a *app, positional []string) ([]apiwire.CommandItem, error) {
	if len(s.items) == 0 {
		if len(s.secrets) > 0 {
			return nil, errors.New("--secret-prompt must follow the --command it answers")
		}
		return nil, nil
	}
	if len(positional) > 0 {
		return nil, errors.New("give the command either as arguments or with --command, not both")
	}
	if len(s.secrets) == 0 {
		return s.items, nil
	}
	answers, err := a.readSecretAnswers(s.secrets, s.items)
	if err != nil {
		return nil, err
	}
	for k, at := range s.secrets {
		ans := answers[k]
		s.items[at[0]].Prompts[at[1]].Answer = &ans
	}
	return s.items, nil
}

// readSecretAnswers reads one answer per secret prompt: from a terminal, asking for each without
// echo; otherwise one line each from stdin.
func (a *app) readSecretAnswers(secrets [][2]int, items []apiwire.CommandItem) ([]string, error) {
	out := make([]string, 0, len(secrets))
	if f, ok := a.io.In.(*os.File); ok && isTerminal(f) {
		for _, at := range secrets {
			fmt.Fprintf(a.io.Err, "answer to %q of %q: ", items[at[0]].Prompts[at[1]].Expect, items[at[0]].Command)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(a.io.Err)
			if err != nil {
				return nil, fmt.Errorf("read secret answer: %w", err)
			}
			if len(b) == 0 {
				return nil, errors.New("--secret-prompt: the answer is empty")
			}
			out = append(out, string(b))
		}
		return out, nil
	}
	sc := bufio.NewScanner(a.io.In)
	for range secrets {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("read secret answers from stdin: %w", err)
			}
			return nil, fmt.Errorf("--secret-prompt: stdin has fewer lines than the %d secret prompts", len(secrets))
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			return nil, errors.New("--secret-prompt: an answer on stdin is empty")
		}
		out = append(out, line)
	}
	return out, nil
}

// commandLine is the command given as arguments (empty when a sequence is given instead).
func commandLine(args []string) string { return strings.Join(args, " ") }

// runOutputCommand is `netauto run-output RUN [--command N]`.
func (a *app) runOutputCommand() *cobra.Command {
	var raw bool
	n := -1
	cmd := &cobra.Command{
		Use:   "run-output RUN [--command N]",
		Short: "Print a run's output, or one command's of a sequence",
		Long: `Print the stored output of a run (GET /v1/runs/{id}/output), or with --command N only
the output of its command N (from 0, as the run's commands list them). Control characters
are printed visibly unless --raw. The exit code is 2 when the run did not succeed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			path := "/runs/" + url.PathEscape(args[0]) + "/output"
			if cmd.Flags().Changed("command") {
				path += "?command=" + strconv.Itoa(n)
			}
			return a.printOutput(ctx, c, path, raw, a.io.Out)
		},
	}
	cmd.Flags().IntVar(&n, "command", -1, "the index (from 0) of the command whose output to print")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the output byte for byte, terminal control sequences included")
	return cmd
}

// printOutput copies the output at path to w, failing with ExitFailed when the run's status
// header says it did not succeed.
func (a *app) printOutput(ctx context.Context, c *Client, path string, raw bool, w io.Writer) error {
	resp, err := c.DoRaw(ctx, "GET", path)
	if err != nil {
		return fmt.Errorf("run output: %w", err)
	}
	defer resp.Body.Close()
	if err := copyOutput(w, resp.Body, raw); err != nil {
		return fmt.Errorf("run output: %w", err)
	}
	if st := resp.Header.Get("X-Run-Status"); st != "" && st != "succeeded" {
		return &exitError{code: ExitFailed, msg: "run " + st}
	}
	return nil
}
