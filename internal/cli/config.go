package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// Config is what `netauto login` stores: os.UserConfigDir()/netauto/config.json, mode 0600.
type Config struct {
	API   string `json:"api,omitempty"`
	WS    string `json:"ws,omitempty"`
	Token string `json:"token,omitempty"`
}

// ConfigPath is the config file's path.
func ConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	return filepath.Join(dir, "netauto", "config.json"), nil
}

func loadConfig() (Config, error) {
	var c Config
	p, err := ConfigPath()
	if err != nil {
		return c, nil // no config dir: flags and environment only
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parse config %s: %w", p, err)
	}
	return c, nil
}

func saveConfig(c Config) (string, error) {
	p, err := ConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("create config dir: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return p, nil
}

func (a *app) loginCommand() *cobra.Command {
	var local bool
	var role string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Store a token (and --api) in the config file after checking it",
		Long: `Store a token in os.UserConfigDir()/netauto/config.json (mode 0600), with --api when given.

The token comes from --token, from NET_AUTO_TOKEN, from --local (runs
"go run ./infra/cmd/localdev token -role ROLE" in the current directory, which must be
the NetAuto repository with the local dev stack's key), or is read from standard input.
It is checked against the API (GET /v1/whoami) before it is stored, and the roles it grants
are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			token := firstNonEmpty(a.token, a.getenv("NET_AUTO_TOKEN"))
			var err error
			switch {
			case local:
				token, err = localToken(ctx, role)
			case token == "":
				token, err = a.readToken()
			}
			if err != nil {
				return err
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			base := firstNonEmpty(a.api, a.getenv("NET_AUTO_API"), cfg.API, DefaultAPI)
			c := NewClient(base, token)
			var me apiwire.WhoAmI
			checkErr := c.Do(ctx, "GET", "/whoami", nil, nil, "", &me)
			if checkErr != nil && !isStatus(checkErr, 403) {
				return fmt.Errorf("check token against %s: %w", base, checkErr)
			}
			cfg.Token = c.Token
			if a.api != "" {
				cfg.API = a.api
			}
			p, err := saveConfig(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "token stored in %s\n", p)
			if checkErr != nil {
				fmt.Fprintln(a.io.Err, "warning: the token grants no role: the API will refuse every request")
			} else {
				fmt.Fprintf(a.io.Err, "signed in as %s: %s\n", terminalSafeString(me.Name), describeGrants(me.Roles))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&local, "local", false, "get a dev token from the local stack (go run ./infra/cmd/localdev token)")
	cmd.Flags().StringVar(&role, "role", "admin", "role of the --local token: viewer, operator or admin")
	return cmd
}

func (a *app) readToken() (string, error) {
	token, err := a.readSecret("token")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(token), nil
}

func localToken(ctx context.Context, role string) (string, error) {
	if _, err := os.Stat(filepath.Join("infra", "cmd", "localdev")); err != nil {
		return "", errors.New("--local runs `go run ./infra/cmd/localdev token`: run it from the NetAuto repository")
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./infra/cmd/localdev", "token", "-role", role)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("localdev token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
