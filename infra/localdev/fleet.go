package localdev

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/resources"
)

// DefaultFleet is `make dev`'s simulated fleet of count devices: a mix of platforms and
// versions, one device that refuses connections and one that drips its output.
func DefaultFleet(count int) devicesim.Spec {
	return devicesim.Spec{
		Count: count, Seed: 1, Versions: 2,
		Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 3}, {Name: "arista_eos", Weight: 2}, {Name: "juniper_junos", Weight: 2},
			{Name: "cisco_nxos", Weight: 1}, {Name: "linux", Weight: 2}},
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 1}, {Fault: devicesim.FaultSlowDrip, Count: 1}},
	}
}

// fleetFiles are where the simulated fleet keeps its state under the state folder.
type fleetFiles struct {
	// State is the fleet's ports and host keys (devicesim.Spec.StateFile).
	State string
	// Seeded records which devices were put in the inventory of which database.
	Seeded string
	// Commands is the log of every command the devices ran (devicesim.Spec.CommandLog).
	Commands string
}

func fleetPaths(stateDir string) fleetFiles {
	dir := filepath.Join(stateDir, fleetDir)
	return fleetFiles{
		State: filepath.Join(dir, "fleet.json"), Seeded: filepath.Join(dir, "seeded.json"), Commands: filepath.Join(dir, "commands.log"),
	}
}

// seedFleet starts a fleet of simulated devices and puts in the inventory the devices it never
// put there, so the first screen a new user sees is real. With persistent set, the fleet comes
// back on the ports and with the host keys it had (the inventory kept by the database still
// reaches it), and a device seeded before is not seeded again: the user's edits, deletions
// included, stand. Every command the devices run is appended to the fleet's command log. It
// returns the fleet and its stop.
func seedFleet(ctx context.Context, spec devicesim.Spec, ep stack.Endpoints, names stack.Names, persistent bool, logger *slog.Logger) (*devicesim.Fleet, func(), error) {
	files := fleetPaths(StateDir())
	if err := os.MkdirAll(filepath.Dir(files.Commands), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create fleet folder: %w", err)
	}
	cmdLog, err := os.OpenFile(files.Commands, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open the fleet's command log: %w", err)
	}
	spec.CommandLog = cmdLog
	if persistent {
		spec.StateFile = files.State
	}
	fleet, err := devicesim.Start(spec)
	if err != nil {
		cmdLog.Close()
		return nil, nil, fmt.Errorf("start simulated fleet: %w", err)
	}
	closeAll := func() { _ = fleet.Close(); _ = cmdLog.Close() }
	created, err := seedInventory(ctx, fleet, ep, names, persistent, files.Seeded)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	logger.Info("simulated fleet ready", "devices", len(fleet.Inventory()), "seeded", created, "command_log", files.Commands)
	return fleet, closeAll, nil
}

// seedInventory imports the fleet's devices that were never seeded into this database and are
// not in the inventory; it returns how many it created.
func seedInventory(ctx context.Context, fleet *devicesim.Fleet, ep stack.Endpoints, names stack.Names, persistent bool, seededPath string) (int, error) {
	cfg, err := config.Load(config.API, os.Getenv)
	if err != nil {
		return 0, err
	}
	awsCfg, err := app.AWSConfig(ctx)
	if err != nil {
		return 0, err
	}
	inv, err := app.Inventory(ctx, cfg, awsCfg)
	if err != nil {
		return 0, err
	}
	seeded := map[string]bool{}
	var database string
	if persistent {
		if database, err = databaseID(ctx, ep, names.Tables[resources.DevicesTable]); err != nil {
			return 0, err
		}
		if seeded, err = loadSeeded(seededPath, database); err != nil {
			return 0, err
		}
	}
	var rows []device.Input
	for _, d := range fleet.Inventory() {
		if seeded[d.ID] {
			continue
		}
		rows = append(rows, api.DeviceInputFromWire(d.DeviceInput))
	}
	if len(rows) == 0 {
		return 0, nil
	}
	// Per row: a device already in the inventory (the user made one with that id) is left as it is.
	res, err := inv.Import(ctx, rows, device.ImportPerRow)
	if err != nil {
		return 0, fmt.Errorf("seed inventory: %w", err)
	}
	if !persistent {
		return res.Created, nil
	}
	for _, r := range res.Rows {
		if r.Status == device.RowCreated || r.Status == device.RowExists {
			seeded[r.ID] = true
		}
	}
	return res.Created, saveSeeded(seededPath, database, seeded)
}
