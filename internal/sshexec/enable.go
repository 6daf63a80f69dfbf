package sshexec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errEnableRefused ends the enable dialog when the device asks for the secret again.
var errEnableRefused = errors.New("the device asked for the enable secret again")

// enable takes the shell from the platform's unprivileged prompt into privileged mode
// with Target.EnableSecret. It does nothing without a secret, on a platform without
// privileged mode, or at a prompt that is privileged already. A refused secret ends
// the run auth_failed / enable_failed; the secret never reaches the sink or a message.
func (s *shell) enable() *Result {
	r := s.r
	e := r.prof.Enable
	if !e.Supported() || r.t.EnableSecret == "" || !strings.HasSuffix(s.prompt, e.Unprivileged) {
		return nil
	}
	r.phase(r.opts.PromptTimeout, r.promptCause("privileged prompt after "+strconv.Quote(e.Command)), false)
	if err := s.send(e.Command + "\n"); err != nil {
		res := r.shellErr(ReasonDisconnected, "connection closed while entering privileged mode", err)
		return &res
	}
	c := &collect{command: e.Command, discard: true, repeat: errEnableRefused,
		ask: &asker{answers: []answer{{re: e.Password, text: r.t.EnableSecret, secret: true}}}}
	err := s.readToPrompt(c)
	r.stopPhase()
	refused := func(detail string) *Result {
		msg := "device refused the enable secret; privileged mode not entered"
		if detail != "" {
			msg += " (device said " + strconv.Quote(shortPrompt(detail)) + ")"
		}
		res := fail(StatusAuthFailed, ReasonEnableFailed, msg, nil)
		return &res
	}
	switch {
	case errors.Is(err, errEnableRefused):
		return refused("")
	case err != nil:
		res := r.shellErr(ReasonDisconnected, "connection closed while entering privileged mode", fmt.Errorf("enable: %w", err))
		return &res
	case !strings.HasSuffix(s.last, e.Privileged):
		return refused(c.lastLine)
	}
	s.prompt = s.last
	s.base = s.prompt[:len(s.prompt)-1]
	return nil
}
