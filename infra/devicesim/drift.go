package devicesim

import (
	"fmt"
	"sync/atomic"
	"time"
)

// configState is what changes in a device's configuration listing from one call to the next:
// with Spec.ConfigNoise each listing's noise lines (the change and save times, the ntp
// clock-period the device rewrites itself) differ from the last one's, as a real device's do from
// night to night; Fleet.ChangeConfig bumps the revision, which changes the configuration itself.
type configState struct {
	noise    bool
	listings atomic.Int64
	revision atomic.Int64
}

// noiseEpoch is the time of a device's first listing; each later one is a day on.
var noiseEpoch = time.Date(2025, time.January, 6, 2, 0, 0, 0, time.UTC)

// noiseLines returns the header lines of the nth listing (from 1) and its ntp clock-period.
func (c *configState) noiseLines(f *facts, n int64) (head []string, ntp string) {
	at := noiseEpoch.Add(time.Duration(n-1)*24*time.Hour + time.Duration(f.octet3)*time.Second)
	stamp := at.Format("15:04:05 UTC Mon Jan 2 2006")
	return []string{"! Last configuration change at " + stamp + " by netauto", "! NVRAM config last updated at " + stamp + " by netauto"},
		fmt.Sprintf("ntp clock-period %d", 17179800+(n*7919+int64(f.octet2))%1000)
}

// ChangeConfig changes the device's configuration as an operator would (a new SNMP contact line
// each time) and returns the configuration's revision: every listing from now on shows it.
func (f *Fleet) ChangeConfig(id string) (int, error) {
	d, err := f.find(id)
	if err != nil {
		return 0, err
	}
	return int(d.facts.cfg.revision.Add(1)), nil
}
