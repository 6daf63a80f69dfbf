package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSequenceFlags parses the sequence flags as a command line gives them and checks the
// commands they send: prompts attach to the --command before them, secret answers come from
// stdin, one line each.
func TestSequenceFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    string // the commands as JSON; "" when none
		stop    bool
		wantErr string
	}{
		{name: "none", args: []string{"r1", "show", "clock"}},
		{name: "three with a confirm", args: []string{"r1", "--command", "show clock", "--command", "clear counters", "--prompt", "[confirm]=y", "--command", "show version", "--stop-on-error"},
			want: `[{"command":"show clock"},{"command":"clear counters","prompts":[{"expect":"[confirm]","answer":"y"}]},{"command":"show version"}]`, stop: true},
		{name: "empty answer and = in the question", args: []string{"r1", "--command", "x", "--prompt", "a=b? [confirm]=", "--prompt-regex", `Dest.*\?=flash:`},
			want: `[{"command":"x","prompts":[{"expect":"a=b? [confirm]","answer":""},{"expect":"Dest.*\\?","answer":"flash:","regex":true}]}]`},
		{name: "secret answers from stdin in order", args: []string{"r1", "--command", "copy scp: flash:", "--secret-prompt", "Password:", "--command", "enable", "--secret-prompt", "Password:"},
			stdin: "first\nsecond\n",
			want:  `[{"command":"copy scp: flash:","prompts":[{"expect":"Password:","answer":"first","secret":true}]},{"command":"enable","prompts":[{"expect":"Password:","answer":"second","secret":true}]}]`},
		{name: "too few secret lines", args: []string{"r1", "--command", "x", "--secret-prompt", "Password:", "--secret-prompt", "Again:"}, stdin: "one\n", wantErr: "fewer lines"},
		{name: "prompt before any command", args: []string{"r1", "--prompt", "[confirm]=y", "--command", "x"}, wantErr: "must follow the --command"},
		{name: "prompt without =", args: []string{"r1", "--command", "x", "--prompt", "[confirm]"}, wantErr: "EXPECT=ANSWER"},
		{name: "both forms", args: []string{"r1", "--command", "x", "show", "clock"}, wantErr: "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sf sequenceFlags
			var got []byte
			cmd := &cobra.Command{Use: "run", RunE: func(_ *cobra.Command, args []string) error {
				a := &app{io: IO{In: strings.NewReader(tc.stdin), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}}
				seq, err := sf.commands(a, args[1:])
				if err != nil {
					return err
				}
				if seq != nil {
					got, err = json.Marshal(seq)
				}
				return err
			}}
			sf.add(cmd)
			cmd.SetArgs(tc.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.want == "" {
				assert.Nil(t, got)
			} else {
				assert.JSONEq(t, tc.want, string(got))
			}
			assert.Equal(t, tc.stop, sf.stop, "--stop-on-error")
		})
	}
}

// TestBulkStdinCarriesOneThing: `netauto bulk --file -` with --secret-prompt is refused before
// anything is read or sent: stdin cannot carry both the device ids and the answers.
func TestBulkStdinCarriesOneThing(t *testing.T) {
	_, stderr, code := runMain(t, "http://127.0.0.1:1", "r1\nr2\nanswer\n", "bulk", "--file", "-", "--command", "copy scp: flash:", "--secret-prompt", "Password:")
	assert.Equal(t, ExitError, code, "exit code; stderr %s", stderr)
	assert.Contains(t, stderr, "--file -: stdin carries the --secret-prompt answers")
}
