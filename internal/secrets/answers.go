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
	name  func(id string) string
}

// NewJobAnswers returns an answer store over store.
func NewJobAnswers(store device.SecretStore) (*JobAnswers, error) {
	if store == nil {
		return nil, errors.New("new job answers: no secret store")
	}
	return &JobAnswers{store: store, name: JobAnswersName}, nil
}

// NewSavedJobAnswers returns the store of saved jobs' secret answers over store: the same store,
// one secret per version of a saved job's answers, named saved-jobs/<key>/answers.
func NewSavedJobAnswers(store device.SecretStore) (*JobAnswers, error) {
	if store == nil {
		return nil, errors.New("new saved job answers: no secret store")
	}
	return &JobAnswers{store: store, name: SavedJobAnswersName}, nil
}

// JobAnswersName is the secret name of a job's answers.
func JobAnswersName(jobID string) string { return "jobs/" + jobID + "/answers" }

// SavedJobAnswersName is the secret name of a saved job's answers under key.
func SavedJobAnswersName(key string) string { return "saved-jobs/" + key + "/answers" }

// PutAnswers implements bulk.AnswerStore.
func (a *JobAnswers) PutAnswers(ctx context.Context, jobID string, answers []string) error {
	data, err := json.Marshal(answers)
	if err != nil {
		return fmt.Errorf("encode answers of job %s: %w", jobID, err)
	}
	return a.store.Put(ctx, a.name(jobID), device.Credential{Password: string(data)})
}

// GetAnswers implements bulk.AnswerStore.
func (a *JobAnswers) GetAnswers(ctx context.Context, jobID string) ([]string, error) {
	c, err := a.store.Get(ctx, a.name(jobID))
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
		return p.Purge(ctx, a.name(jobID))
	}
	return a.store.Delete(ctx, a.name(jobID))
}
