package sshexec

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
)

func TestClassifyPrompt(t *testing.T) {
	tests := []struct {
		name     string
		prompt   string
		echo     bool
		password bool
		refused  string // the refusal's kind; empty when the prompt is answered
	}{
		{"plain", "Password: ", false, true, ""},
		{"no colon", "password", false, true, ""},
		{"upper case", "PASSWORD:", false, true, ""},
		{"openssh pam", "(admin@10.0.0.1) Password: ", false, true, ""},
		{"possessive", "admin@r1's password:", false, true, ""},
		{"password for", "Password for admin: ", false, true, ""},
		{"passwd", "Enter passwd:", false, true, ""},
		{"echoed user name", "Username: ", true, false, ""},
		{"verification code", "Verification code: ", false, false, "a verification code"},
		{"verification code echoed", "Verification code: ", true, false, "a verification code"},
		{"otp", "OTP: ", false, false, "a one-time code"},
		{"one-time password", "One-time password: ", false, false, "a one-time code"},
		{"one time password", "Enter your one time password:", false, false, "a one-time code"},
		{"securid passcode", "Enter PASSCODE: ", false, false, "a verification code"},
		{"duo", "Passcode or option (1-3): ", false, false, "a verification code"},
		{"token", "Token: ", false, false, "a token"},
		{"pin", "PIN: ", false, false, "a PIN"},
		{"second factor", "Second factor: ", false, false, "a second factor"},
		{"authenticator", "Authenticator app code:", false, false, "a verification code"},
		{"new password", "New password: ", false, false, "a password change"},
		{"retype new password", "Retype new password: ", false, false, "a password change"},
		{"password and otp", "Password+OTP: ", false, false, "a one-time code"},
		{"passphrase", "Passphrase: ", false, false, "something other than a password"},
		{"empty hidden prompt", "", false, false, "something other than a password"},
		{"other hidden question", "Mother's maiden name: ", false, false, "something other than a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			password, refused := classifyPrompt(tt.prompt, tt.echo)
			assert.Equal(t, tt.password, password, "answered with the password")
			if tt.refused == "" {
				assert.Nil(t, refused, "refusal")
				return
			}
			require.NotNil(t, refused, "refusal")
			assert.Equal(t, tt.refused, refused.kind, "kind")
		})
	}
}

func TestAnswerPromptsRefusesTheWholeRound(t *testing.T) {
	tg := Target{Username: "admin", Password: "s3cret"}
	tests := []struct {
		name      string
		questions []string
		echos     []bool
		want      []string
	}{
		{"user and password", []string{"Username: ", "Password: "}, []bool{true, false}, []string{"admin", "s3cret"}},
		{"password then code in one round", []string{"Password: ", "Verification code: "}, []bool{false, false}, nil},
		{"no questions", nil, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := answerPrompts(tg, tt.questions, tt.echos)
			if tt.want == nil {
				require.Error(t, err, "answers %q", got)
				assert.NotContains(t, err.Error(), tg.Password, "error names the password")
				assert.Nil(t, got, "answers")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestKeyboardInteractiveOnlyAnswersPasswordPrompts runs against simulated devices that record
// every keyboard-interactive answer: a device that asks for a verification code after the
// password never receives the password (or anything) for it, the run ends auth_failed with a
// reason and message naming the prompt, and a device that only asks for the password still works.
func TestKeyboardInteractiveOnlyAnswersPasswordPrompts(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 3, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe", Fault: devicesim.FaultOTPPrompt},
		{Platform: "juniper_junos"},
	}})
	inv := f.Inventory()
	otp, junos := inv[0], inv[1]
	r := newRunner(t, fastOpts)
	tests := []struct {
		name   string
		device devicesim.InventoryDevice
		method AuthMethod
		status Status
		reason Reason
	}{
		{"otp device, keyboard-interactive first", otp, AuthKeyboardInteractive, StatusAuthFailed, ReasonAuthPrompt},
		{"otp device, password first", otp, AuthPassword, StatusAuthFailed, ReasonAuthPrompt},
		{"password-only device", junos, AuthKeyboardInteractive, StatusSucceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(tt.device)
			tg.AuthMethod = tt.method
			before := len(f.PromptAnswers(tt.device.ID))
			res, out := runCmd(t, r, tg, "show version")
			requireOutcome(t, res, tt.status, tt.reason, out)
			got := f.PromptAnswers(tt.device.ID)[before:]
			require.NotEmpty(t, got, "the device asked nothing")
			for _, pa := range got {
				if strings.HasPrefix(pa.Prompt, "Password") {
					assert.True(t, pa.Answered, "password prompt answered")
					continue
				}
				assert.NotEqual(t, tg.Password, pa.Answer, "prompt %q got the password", pa.Prompt)
				assert.False(t, pa.Answered, "prompt %q answered with %d bytes", pa.Prompt, len(pa.Answer))
			}
			if tt.status == StatusSucceeded {
				return
			}
			assert.Contains(t, res.Message, "verification code", "message names the prompt kind")
			assert.NotContains(t, res.Message, tg.Password, "message")
			assert.NotContains(t, res.Err.Error(), tg.Password, "error")
			last := got[len(got)-1]
			assert.Equal(t, "Verification code: ", last.Prompt, "the device asked for its code")
		})
	}
}
