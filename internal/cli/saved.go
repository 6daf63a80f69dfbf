package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// selectorFlags build a saved job's selector: --ids, --tag (repeatable, AND-ed), --site,
// --platform.
type selectorFlags struct {
	ids      []string
	tags     []string
	site     string
	platform string
}

func (f *selectorFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.ids, "ids", nil, "device ids, comma-separated (a term of the selector)")
	cmd.Flags().StringArrayVar(&f.tags, "tag", nil, "KEY=VALUE or KEY (any value): devices with this tag (repeatable; all must hold)")
	cmd.Flags().StringVar(&f.site, "site", "", "devices at this site")
	cmd.Flags().StringVar(&f.platform, "platform", "", "devices of this platform")
}

// changed reports whether any selector flag was given.
func (f *selectorFlags) changed(cmd *cobra.Command) bool {
	for _, n := range []string{"ids", "tag", "site", "platform"} {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// selector is the selector the flags give.
func (f *selectorFlags) selector() (*apiwire.Selector, error) {
	sel := &apiwire.Selector{DeviceIDs: f.ids, Site: f.site, Platform: f.platform}
	for _, t := range f.tags {
		k, v, _ := strings.Cut(t, "=")
		if strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--tag %q: want KEY=VALUE or KEY", t)
		}
		if sel.Tags == nil {
			sel.Tags = map[string]string{}
		}
		sel.Tags[k] = v
	}
	return sel, nil
}

// scheduleFlags set a saved job's schedule: --cron, --time-zone, and --enable or --pause.
type scheduleFlags struct {
	cron, tz      string
	enable, pause bool
}

func (f *scheduleFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cron, "cron", "", "run on this schedule: 5 fields (minute hour day-of-month month day-of-week) or @daily/@hourly")
	cmd.Flags().StringVar(&f.tz, "time-zone", "", "IANA time zone the cron is read in, e.g. Europe/Berlin (default UTC)")
	cmd.Flags().BoolVar(&f.enable, "enable", false, "enable the schedule (times missed while paused are skipped)")
	cmd.Flags().BoolVar(&f.pause, "pause", false, "pause the schedule")
	cmd.MarkFlagsMutuallyExclusive("enable", "pause")
}

// changed reports whether any schedule flag was given.
func (f *scheduleFlags) changed(cmd *cobra.Command) bool {
	for _, n := range []string{"cron", "time-zone", "enable", "pause"} {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// apply returns cur (nil: none yet) changed by the flags; a new schedule is enabled unless
// --pause is given.
func (f *scheduleFlags) apply(cmd *cobra.Command, cur *apiwire.Schedule) (*apiwire.Schedule, error) {
	s := apiwire.Schedule{Enabled: true}
	if cur != nil {
		s = *cur
		s.PausedReason = ""
	}
	fl := cmd.Flags()
	if fl.Changed("cron") {
		s.Cron = f.cron
	}
	if fl.Changed("time-zone") {
		s.TimeZone = f.tz
	}
	if f.enable {
		s.Enabled = true
	}
	if f.pause {
		s.Enabled = false
	}
	if s.Cron == "" {
		return nil, errors.New("the saved job has no schedule yet: give --cron")
	}
	return &s, nil
}

// scheduleString is a schedule as the CLI prints it.
func scheduleString(s *apiwire.Schedule) string {
	if s == nil {
		return ""
	}
	state := "enabled"
	if !s.Enabled {
		state = "paused"
		if s.PausedReason != "" {
			state += ": " + s.PausedReason
		}
	}
	return fmt.Sprintf("%s %s (%s)", s.Cron, s.TimeZone, state)
}

// selectorString prints a selector as its AND-ed terms.
func selectorString(s apiwire.Selector) string {
	var terms []string
	if len(s.DeviceIDs) > 0 {
		terms = append(terms, "ids="+strings.Join(s.DeviceIDs, ","))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		if s.Tags[k] == "" {
			terms = append(terms, "tag "+k)
		} else {
			terms = append(terms, "tag "+k+"="+s.Tags[k])
		}
	}
	if s.Site != "" {
		terms = append(terms, "site="+s.Site)
	}
	if s.Platform != "" {
		terms = append(terms, "platform="+s.Platform)
	}
	return strings.Join(terms, " AND ")
}

func (a *app) savedCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "saved", Short: "Saved jobs: list, show, create, update, delete, run"}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "Saved jobs in your scope (every page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			items := []apiwire.SavedJob{}
			for {
				var page apiwire.SavedJobList
				if err := c.Do(cmd.Context(), "GET", "/saved-jobs", q, nil, "", &page); err != nil {
					return fmt.Errorf("list saved jobs: %w", err)
				}
				items = append(items, page.Items...)
				if page.Next == "" {
					break
				}
				q.Set("cursor", page.Next)
			}
			if a.json {
				return a.printJSON(items)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSELECTOR\tSCHEDULE\tNEXT RUN\tCOMMAND")
			for _, s := range items {
				next := "-"
				if len(s.NextRuns) > 0 {
					next = s.NextRuns[0].Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, terminalSafeString(s.Name), terminalSafeString(s.Owner),
					terminalSafeString(selectorString(s.Selector)), terminalSafeString(cmp.Or(scheduleString(s.Schedule), "-")), next, terminalSafeString(s.Command))
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "saved jobs per page read (1-500)")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "One saved job (secret answers are never shown)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := a.call(cmd, "GET", "/saved-jobs/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return fmt.Errorf("saved job %s: %w", args[0], err)
			}
			return a.printSaved(raw)
		},
	}
	var (
		name string
		sel  selectorFlags
		schf scheduleFlags
		jf   jobFlags
		sf   sequenceFlags
	)
	create := &cobra.Command{
		Use:   "create --name N (--ids a,b | --tag k=v | --site S | --platform P)... (-- COMMAND | --command C [--prompt E=A]...)",
		Short: "Save a job: a command or sequence, options, and a selector evaluated at every start",
		Long: `Save a job (POST /v1/saved-jobs) that you own. The selector's terms (--ids, each --tag,
--site, --platform) all must hold; it is evaluated each time the job starts, within your
scope, so devices added later are included. The command is given after -- or as a sequence
with --command, --prompt, --prompt-regex and --secret-prompt, as for bulk; secret answers
are read from stdin and stored write-only.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := apiwire.SavedJobInput{Name: name, Options: jf.options()}
			in.Options.StopOnError = sf.stop
			seq, err := sf.commands(a, args)
			if err != nil {
				return err
			}
			if seq != nil {
				in.Commands = seq
			} else if in.Command = commandLine(args); strings.TrimSpace(in.Command) == "" {
				return errors.New("give the command after --, or a sequence with --command")
			}
			if in.Selector, err = sel.selector(); err != nil {
				return err
			}
			if schf.changed(cmd) {
				if in.Schedule, err = schf.apply(cmd, nil); err != nil {
					return err
				}
			}
			var raw json.RawMessage
			if err := a.call(cmd, "POST", "/saved-jobs", in, &raw); err != nil {
				return fmt.Errorf("save job: %w", err)
			}
			return a.printSaved(raw)
		},
	}
	create.Flags().StringVar(&name, "name", "", "the saved job's name")
	sel.add(create)
	schf.add(create)
	jf.add(create, true)
	sf.add(create)
	var (
		uname    string
		usel     selectorFlags
		usch     scheduleFlags
		ujf      jobFlags
		usf      sequenceFlags
		uversion int64
	)
	update := &cobra.Command{
		Use:   "update ID [--name N] [selector flags] [--cron C --time-zone Z --enable|--pause] [--timeout D] [-- COMMAND | --command C ...] [--version V]",
		Short: "Change a saved job (yours, or any as an admin); selector flags replace the whole selector",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var p apiwire.SavedJobPatch
			if fl.Changed("name") {
				p.Name = &uname
			}
			if usel.changed(cmd) {
				s, err := usel.selector()
				if err != nil {
					return err
				}
				p.Selector = s
			}
			if fl.Changed("timeout") || fl.Changed("max-concurrency") || fl.Changed("max-errors") || fl.Changed("stop-on-error") {
				o := ujf.options()
				o.StopOnError = usf.stop
				p.Options = &o
			}
			seq, err := usf.commands(a, args[1:])
			if err != nil {
				return err
			}
			if seq != nil {
				p.Commands = seq
			} else if line := commandLine(args[1:]); strings.TrimSpace(line) != "" {
				p.Command = &line
			}
			if fl.Changed("version") {
				p.Version = &uversion
			}
			if usch.changed(cmd) {
				// A schedule is replaced whole: read the current one, change what the flags say,
				// and send it at the version read.
				var cur apiwire.SavedJob
				if err := a.call(cmd, "GET", "/saved-jobs/"+url.PathEscape(args[0]), nil, &cur); err != nil {
					return fmt.Errorf("read saved job %s: %w", args[0], err)
				}
				if p.Schedule, err = usch.apply(cmd, cur.Schedule); err != nil {
					return err
				}
				if p.Version == nil {
					p.Version = &cur.Version
				}
			}
			if p.Name == nil && p.Selector == nil && p.Options == nil && p.Commands == nil && p.Command == nil && p.Schedule == nil {
				return errors.New("nothing to change: give --name, selector flags, options, a command or schedule flags")
			}
			var raw json.RawMessage
			if err := a.call(cmd, "PATCH", "/saved-jobs/"+url.PathEscape(args[0]), p, &raw); err != nil {
				return fmt.Errorf("update saved job %s: %w", args[0], err)
			}
			return a.printSaved(raw)
		},
	}
	update.Flags().StringVar(&uname, "name", "", "a new name")
	usel.add(update)
	usch.add(update)
	ujf.add(update, true)
	usf.add(update)
	update.Flags().Int64Var(&uversion, "version", 0, "fail if the saved job is no longer at this version")
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a saved job and its secret answers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.call(cmd, "DELETE", "/saved-jobs/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return fmt.Errorf("delete saved job %s: %w", args[0], err)
			}
			fmt.Fprintf(a.io.Out, "deleted saved job %s\n", terminalSafeString(args[0]))
			return nil
		},
	}
	var rf reportFlags
	var noWait bool
	run := &cobra.Command{
		Use:   "run ID",
		Short: "Start a saved job now and follow it as bulk does (--no-wait: print the job id)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.startJob(cmd, "/saved-jobs/"+url.PathEscape(args[0])+"/run", nil, "saved job "+args[0], noWait, rf)
		},
	}
	run.Flags().BoolVar(&noWait, "no-wait", false, "print the started job's id and return")
	run.Flags().StringVar(&rf.out, "out", "", "write each device's output to DIR/<device>.txt")
	run.Flags().BoolVarP(&a.yes, "yes", "y", false, "on Ctrl-C cancel the job without asking")
	cmd.AddCommand(list, show, create, update, del, run)
	return cmd
}

// rerunCommand is "job rerun JOB --status S...".
func (a *app) rerunCommand() *cobra.Command {
	var statuses []string
	var rf reportFlags
	var noWait bool
	cmd := &cobra.Command{
		Use:   "rerun ID --status failed [--status unreachable ...]",
		Short: "Run a finished job again on its devices that ended in the given statuses, and follow it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(statuses) == 0 {
				return errors.New("give at least one --status (failed, unreachable, timed_out, auth_failed, host_key_mismatch, cancelled, succeeded)")
			}
			return a.startJob(cmd, "/bulk/"+url.PathEscape(args[0])+"/rerun", apiwire.RerunRequest{Statuses: statuses}, "re-run of job "+args[0], noWait, rf)
		},
	}
	cmd.Flags().StringSliceVar(&statuses, "status", nil, "a status whose devices run again (repeatable or comma-separated)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "print the new job's id and return")
	cmd.Flags().StringVar(&rf.out, "out", "", "write each device's output to DIR/<device>.txt")
	cmd.Flags().BoolVarP(&a.yes, "yes", "y", false, "on Ctrl-C cancel the job without asking")
	return cmd
}

// startJob posts body to path, which answers as POST /v1/bulk, and follows the job it started
// unless noWait.
func (a *app) startJob(cmd *cobra.Command, path string, body any, what string, noWait bool, rf reportFlags) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	sigs, stop := a.signals.Notify()
	defer stop()
	var acc apiwire.BulkAccepted
	if err := c.Do(cmd.Context(), "POST", path, nil, body, "", &acc); err != nil {
		return fmt.Errorf("start %s: %w", what, err)
	}
	if noWait {
		if a.json {
			return a.printJSON(acc)
		}
		fmt.Fprintln(a.io.Out, acc.JobID)
		return nil
	}
	if !a.json {
		fmt.Fprintf(a.io.Err, "job %s: %s on %d devices\n", acc.JobID, terminalSafeString(what), acc.DeviceCount)
	}
	return a.follow(cmd.Context(), c, acc.JobID, acc.DeviceCount, rf, sigs)
}

// printSaved prints one saved job answer, as JSON with --json.
func (a *app) printSaved(raw json.RawMessage) error {
	if a.json {
		return a.printJSON(raw)
	}
	var s apiwire.SavedJob
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decode saved job: %w", err)
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"id", s.ID}, {"name", s.Name}, {"command", s.Command}, {"selector", selectorString(s.Selector)},
		{"owner", s.Owner}, {"version", strconv.FormatInt(s.Version, 10)}, {"updated", s.UpdatedAt.Format(time.RFC3339)},
	}
	if s.Schedule != nil {
		rows = append(rows, [2]string{"schedule", scheduleString(s.Schedule)})
	}
	for i, t := range s.NextRuns {
		rows = append(rows, [2]string{fmt.Sprintf("next_runs[%d]", i), t.Format(time.RFC3339)})
	}
	for i, c := range s.Commands {
		line := c.Command
		for _, p := range c.Prompts {
			switch {
			case p.Secret:
				line += fmt.Sprintf(" [%q → secret]", p.Expect)
			case p.Answer != nil:
				line += fmt.Sprintf(" [%q → %q]", p.Expect, *p.Answer)
			}
		}
		rows = append(rows, [2]string{fmt.Sprintf("commands[%d]", i), line})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], terminalSafeString(r[1]))
	}
	return tw.Flush()
}
