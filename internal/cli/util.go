package cli

import (
	"errors"
	"fmt"
	"io"
)

func readAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return data, nil
}

func asImportError(err error, target **ImportError) bool { return errors.As(err, target) }
