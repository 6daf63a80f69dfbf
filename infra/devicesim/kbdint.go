package devicesim

import (
	"errors"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// PromptAnswer is one keyboard-interactive question a device asked and the answer it got.
type PromptAnswer struct {
	Prompt string
	Echo   bool
	// Answered is false when the client ended authentication instead of answering.
	Answered bool
	Answer   string
}

// promptLog records the keyboard-interactive answers a device received.
type promptLog struct {
	mu  sync.Mutex
	got []PromptAnswer
}

// ask records questions before they are sent (so a test that saw a question also sees its
// entry) and returns the index of the first.
func (l *promptLog) ask(questions []string, echos []bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := len(l.got)
	for i, q := range questions {
		l.got = append(l.got, PromptAnswer{Prompt: q, Echo: i < len(echos) && echos[i]})
	}
	return first
}

// answer records the answers to the questions recorded from index first.
func (l *promptLog) answer(first int, answers []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range answers {
		if first+i < len(l.got) {
			l.got[first+i].Answered, l.got[first+i].Answer = true, a
		}
	}
}

// PromptAnswers returns every keyboard-interactive question the device with this inventory id
// asked, with the answer the client gave (nil for an unknown id): a test's proof of which secret
// went to which prompt.
func (f *Fleet) PromptAnswers(id string) []PromptAnswer {
	for _, d := range f.devices {
		if d.inv.ID == id {
			d.prompts.mu.Lock()
			defer d.prompts.mu.Unlock()
			return append([]PromptAnswer(nil), d.prompts.got...)
		}
	}
	return nil
}

// otpQuestion is the second keyboard-interactive round of a FaultOTPPrompt device.
const otpQuestion = "Verification code: "

// keyboardInteractive is the device's keyboard-interactive callback: a "Password: " question,
// then, on a FaultOTPPrompt device, a hidden verification-code question that no answer passes.
// Every answer is recorded.
func (d *device) keyboardInteractive(ok func(user, password string) bool) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	ask := func(user string, client ssh.KeyboardInteractiveChallenge, q string) ([]string, error) {
		questions, echos := []string{q}, []bool{false}
		first := d.prompts.ask(questions, echos)
		answers, err := client("", "", questions, echos)
		if err != nil {
			return nil, err
		}
		d.prompts.answer(first, answers)
		d.recv.auth(AuthAttempt{Method: "keyboard-interactive", User: user, Secret: strings.Join(answers, "\n")})
		return answers, nil
	}
	return func(conn ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		answers, err := ask(conn.User(), client, "Password: ")
		if err != nil {
			return nil, err
		}
		if len(answers) != 1 || !ok(conn.User(), answers[0]) {
			return nil, errors.New("keyboard-interactive: access denied")
		}
		if d.spec.Fault != FaultOTPPrompt {
			return &ssh.Permissions{}, nil
		}
		if _, err := ask(conn.User(), client, otpQuestion); err != nil {
			return nil, err
		}
		return nil, errors.New("keyboard-interactive: wrong verification code")
	}
}
