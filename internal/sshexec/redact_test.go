package sshexec

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
)

// TestRedact holds the rule for every length of secret: from MinMaskedSecret bytes a secret is
// masked where it occurs and the rest of the text kept; a text holding a shorter one (1-2 bytes)
// is withheld whole; texts without a secret are kept as they are.
func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		target   Target
		seq      Sequence
		message  string
		want     string
		withheld bool
	}{
		{name: "long password masked", target: Target{Password: "hunter22"}, message: "% Unknown command: show hunter22", want: "% Unknown command: show [redacted]"},
		{name: "three bytes masked", target: Target{Password: "h2x"}, message: "bad h2x here", want: "bad [redacted] here"},
		{name: "two-byte password withheld", target: Target{Password: "Zq"}, message: "% Unknown command: show Zq", withheld: true},
		{name: "one-byte enable secret withheld", target: Target{EnableSecret: "7"}, message: "% Bad secrets 7", withheld: true},
		{name: "one-byte secret answer withheld", seq: Sequence{Commands: []Command{{Text: "copy", Prompts: []Prompt{{Expect: "PIN", Answer: "4", Secret: true}}}}}, message: "device said 4", withheld: true},
		{name: "one-byte jump host password withheld", target: Target{JumpHosts: []Hop{{Password: "j"}}}, message: "jump: rejected j", withheld: true},
		{name: "short secret absent: kept", target: Target{Password: "Zq"}, message: "connection refused", want: "connection refused"},
		{name: "a plain answer is no secret", seq: Sequence{Commands: []Command{{Text: "reload", Prompts: []Prompt{{Expect: "[confirm]", Answer: "y"}}}}}, message: "yes", want: "yes"},
		{name: "no secrets", message: "timed out", want: "timed out"},
		{name: "a secret inside a longer one: the longer is masked whole", target: Target{Password: "cisco", EnableSecret: "cisco123"}, message: "% Bad secrets cisco123", want: "% Bad secrets [redacted]"},
		{name: "a secret inside a longer one, listed last", target: Target{Password: "cisco123", EnableSecret: "cisco"}, message: "% Bad secrets cisco123 cisco", want: "% Bad secrets [redacted] [redacted]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := redact(Result{Message: tc.message, Commands: []CommandResult{{Message: tc.message}}, Err: errors.New(tc.message)}, tc.target, tc.seq)
			want := tc.want
			if tc.withheld {
				want = withheldText
			}
			assert.Equal(t, want, res.Message, "message")
			require.Len(t, res.Commands, 1)
			assert.Equal(t, want, res.Commands[0].Message, "command message")
			require.Error(t, res.Err)
			assert.Equal(t, want, res.Err.Error(), "error")
		})
	}
}

// TestShortPasswordNeverEchoed runs an unknown command holding a two-byte password on a device
// that echoes unknown commands in its error line: the message is withheld (the status and reason
// stay), while a long password is masked in the same line.
func TestShortPasswordNeverEchoed(t *testing.T) {
	for _, tc := range []struct {
		name, password, want string
	}{
		{name: "two bytes", password: "Zq", want: withheldText},
		{name: "long", password: "Zq-long-s3cret", want: "% Unknown command: show [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFleet(t, devicesim.Spec{Seed: 9, Password: tc.password, Devices: []devicesim.DeviceSpec{{Platform: "generic"}}})
			r := newRunner(t, fastOpts)
			d := f.Inventory()[0]
			res, _ := runCmd(t, r, targetFor(d), "show "+tc.password)
			assert.Equal(t, StatusFailed, res.Status, res.Message)
			assert.Equal(t, ReasonCommandError, res.Reason)
			assert.Equal(t, tc.want, res.Message)
			for _, c := range res.Commands {
				assert.NotContains(t, c.Message, tc.password)
			}
		})
	}
}
