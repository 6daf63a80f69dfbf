package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
)

// JobAnswers keeps the secret prompt answers of bulk jobs in a secret store, one secret per job
// named jobs/<job id>/answers, so they never travel in a queue message or sit in a table; it
// implements bulk.AnswerStore. The answers are kept as a JSON list in the secret's password field.
type JobAnswers struct {
	store device.SecretStore
}

// NewJobAnswers returns an answer store over store.
func NewJobAnswers(store device.SecretStore) (*JobAnswers, error) {
	if store == nil {
		return nil, errors.New("new job answers: no secret store")
	}
	return &JobAnswers{store: store}, nil
}

// JobAnswersName is the secret name of a job's answers.
func JobAnswersName(jobID string) string { return "jobs/" + jobID + "/answers" }

// PutAnswers implements bulk.AnswerStore.
func (a *JobAnswers) PutAnswers(ctx context.Context, jobID string, answers []string) error {
	data, err := json.Marshal(answers)
	if err != nil {
		return fmt.Errorf("encode answers of job %s: %w", jobID, err)
	}
	return a.store.Put(ctx, JobAnswersName(jobID), device.Credential{Password: string(data)})
}

// GetAnswers implements bulk.AnswerStore.
func (a *JobAnswers) GetAnswers(ctx context.Context, jobID string) ([]string, error) {
	c, err := a.store.Get(ctx, JobAnswersName(jobID))
	if errors.Is(err, device.ErrNotFound) {
		return nil, fmt.Errorf("answers of job %s: %w", jobID, bulk.ErrAnswersGone)
	}
	if err != nil {
		return nil, err
	}
	var answers []string
	if err := json.Unmarshal([]byte(c.Password), &answers); err != nil {
		return nil, fmt.Errorf("answers of job %s are not a JSON list", jobID)
	}
	return answers, nil
}

// DeleteAnswers implements bulk.AnswerStore: at once, without the recovery window a deleted
// credential keeps, when the store can (Purge).
func (a *JobAnswers) DeleteAnswers(ctx context.Context, jobID string) error {
	if p, ok := a.store.(interface {
		Purge(ctx context.Context, name string) error
	}); ok {
		return p.Purge(ctx, JobAnswersName(jobID))
	}
	return a.store.Delete(ctx, JobAnswersName(jobID))
}
