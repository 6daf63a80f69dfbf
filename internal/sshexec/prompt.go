package sshexec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// promptDenyWords names, per kind of secret, the words of a keyboard-interactive prompt that ask
// for something other than the device password. A prompt with any of them is never answered with
// the password, even when it also says "password" ("One-time password:", "New password:").
var promptDenyWords = []struct {
	kind  string
	words []string
}{
	{"a one-time code", []string{"otp", "totp", "hotp", "onetime", "one-time", "one time"}},
	{"a verification code", []string{"verification", "verify", "code", "passcode"}},
	{"a token", []string{"token", "securid", "yubikey"}},
	{"a PIN", []string{"pin"}},
	{"a second factor", []string{"2fa", "mfa", "factor", "duo", "authenticator", "sms", "push"}},
	{"a password change", []string{"new", "retype", "re-enter", "reenter", "confirm", "again"}},
}

// promptRefusedError ends keyboard-interactive authentication when the device asks a question the
// engine does not answer with the target's secrets. Its text names the kind of question and
// quotes the device's prompt, never a secret.
type promptRefusedError struct {
	kind, prompt string
}

func (e *promptRefusedError) Error() string {
	return fmt.Sprintf("device asked for %s in keyboard-interactive authentication (prompt %s); only password prompts are answered",
		e.kind, strconv.Quote(e.prompt))
}

// promptWords splits a prompt into lower-case words: runs of letters and digits, with inner
// hyphens kept ("one-time", "re-enter").
func promptWords(prompt string) []string {
	return strings.FieldsFunc(strings.ToLower(prompt), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-'
	})
}

// classifyPrompt decides how a keyboard-interactive question is answered: with the password
// (hidden prompts whose words include "password" or "passwd" and none of promptDenyWords), with
// the user name (echoed prompts without a deny word), or not at all (refused is non-nil).
func classifyPrompt(prompt string, echo bool) (password bool, refused *promptRefusedError) {
	words := promptWords(prompt)
	joined := " " + strings.Join(words, " ") + " "
	for _, d := range promptDenyWords {
		for _, w := range d.words {
			if slices.Contains(words, w) || strings.Contains(w, " ") && strings.Contains(joined, " "+w+" ") {
				return false, &promptRefusedError{kind: d.kind, prompt: shortPrompt(prompt)}
			}
		}
	}
	if echo {
		return false, nil
	}
	if slices.Contains(words, "password") || slices.Contains(words, "passwd") {
		return true, nil
	}
	return false, &promptRefusedError{kind: "something other than a password", prompt: shortPrompt(prompt)}
}

// shortPrompt trims a device's prompt for a message: at most 80 characters, spaces around removed.
func shortPrompt(p string) string {
	p = strings.TrimSpace(p)
	if r := []rune(p); len(r) > 80 {
		p = string(r[:80]) + "…"
	}
	return p
}

// answerPrompts answers one keyboard-interactive round: echoed questions with the user name,
// password questions with the password. Any other question refuses the whole round, so the
// password is not sent for the round's password questions either.
func answerPrompts(t Target, questions []string, echos []bool) ([]string, error) {
	answers := make([]string, len(questions))
	for i, q := range questions {
		echo := i < len(echos) && echos[i]
		password, refused := classifyPrompt(q, echo)
		switch {
		case refused != nil:
			return nil, refused
		case password:
			answers[i] = t.Password
		default:
			answers[i] = t.Username
		}
	}
	return answers, nil
}

// refusePrompt records why keyboard-interactive authentication was ended: x/crypto/ssh drops the
// callback's error when it moves on to the next method, so classifyHandshake reads it from here.
func (r *run) refusePrompt(err error) {
	var refused *promptRefusedError
	if !errors.As(err, &refused) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.promptRefused == nil {
		r.promptRefused = refused
	}
}

func (r *run) refusedPrompt() *promptRefusedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.promptRefused
}
