package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// jobFlags are the options of a bulk job and of a run.
type jobFlags struct {
	timeout        time.Duration
	maxConcurrency int
	maxErrors      string
}

func (f *jobFlags) add(cmd *cobra.Command, bulk bool) {
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "per-device timeout, e.g. 30s (1s to 295s; server default 60s)")
	if bulk {
		cmd.Flags().IntVar(&f.maxConcurrency, "max-concurrency", 0, "devices running at once across the job")
		cmd.Flags().StringVar(&f.maxErrors, "max-errors", "", `stop after more failures than a count ("10") or share ("5%")`)
	}
}

// options are the job's options from the flags; zero (every default) is left out of the request.
func (f jobFlags) options() apiwire.BulkOptions {
	o := apiwire.BulkOptions{MaxConcurrency: f.maxConcurrency, MaxErrors: f.maxErrors}
	if f.timeout > 0 {
		o.TimeoutS = int(math.Ceil(f.timeout.Seconds()))
	}
	return o
}

// reportFlags say how a finished job is reported.
type reportFlags struct {
	out string
}

func (a *app) bulkCommand() *cobra.Command {
	var jf jobFlags
	var rf reportFlags
	var f deviceFilter
	var ids []string
	var file string
	var sf sequenceFlags
	cmd := &cobra.Command{
		Use:   "bulk [--ids a,b | --tag k=v | --site S | --platform P | --file F] (-- COMMAND | --command C [--prompt E=A] ...)",
		Short: "Run one command, or a sequence, on many devices, with live progress",
		Long: `Run one command on many devices (POST /v1/bulk) and follow the job until it ends.
--command (repeatable) runs a sequence instead, in order on one session per device; --prompt
EXPECT=ANSWER answers a question of the --command before it, --secret-prompt EXPECT reads
the answer from stdin (never an argument), --stop-on-error stops at a device's first failure.

Devices come from --ids, --file (one id per line, # comments) or the inventory filters
--tag, --site and --platform (every page of GET /v1/devices). A progress bar with counts
per status is drawn on a terminal. At the end a table of devices is printed (--json: one
JSON object per line, per device, then the job), and --out DIR writes each device's output
to DIR/<device>.txt. The exit code is 2 when any device did not succeed.

Ctrl-C asks whether to cancel the job (with --yes, or without a terminal, it cancels).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			command := commandLine(args)
			if file == "-" && len(sf.secrets) > 0 && !isTerminal(a.io.In) {
				return errors.New("--file -: stdin carries the --secret-prompt answers; give the device ids in a file")
			}
			seq, err := sf.commands(a, args)
			if err != nil {
				return err
			}
			if seq == nil && strings.TrimSpace(command) == "" {
				return errors.New("give the command after --, or a sequence with --command")
			}
			if seq != nil {
				command = fmt.Sprintf("%s (%d commands)", seq[0].Command, len(seq))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			// Interrupts are caught from here on, so a Ctrl-C right after the job starts still
			// offers to cancel it.
			sigs, stop := a.signals.Notify()
			defer stop()
			devs, err := a.selectDevices(ctx, c, ids, file, f)
			if err != nil {
				return err
			}
			body := apiwire.BulkRequest{DeviceIDs: devs, Options: jf.options()}
			body.Options.StopOnError = sf.stop
			if seq != nil {
				body.Commands = seq
			} else {
				body.Command = command
			}
			var acc apiwire.BulkAccepted
			if err := c.Do(ctx, "POST", "/bulk", nil, body, "", &acc); err != nil {
				return fmt.Errorf("start bulk job: %w", err)
			}
			if !a.json {
				fmt.Fprintf(a.io.Err, "job %s: %q on %d devices\n", acc.JobID, command, acc.DeviceCount)
			}
			return a.follow(ctx, c, acc.JobID, acc.DeviceCount, rf, sigs)
		},
	}
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "device ids, comma-separated")
	cmd.Flags().StringVar(&file, "file", "", "file with one device id per line (- for stdin)")
	f.flags(cmd)
	jf.add(cmd, true)
	sf.add(cmd)
	cmd.Flags().StringVar(&rf.out, "out", "", "write each device's output to DIR/<device>.txt")
	cmd.Flags().BoolVarP(&a.yes, "yes", "y", false, "on Ctrl-C cancel the job without asking")
	return cmd
}

// selectDevices resolves the device selection to ids.
func (a *app) selectDevices(ctx context.Context, c *Client, ids []string, file string, f deviceFilter) ([]string, error) {
	n := 0
	for _, set := range []bool{len(ids) > 0, file != "", !f.empty()} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("select devices with exactly one of --ids, --file, or --tag/--site/--platform")
	}
	switch {
	case len(ids) > 0:
		return ids, nil
	case file != "":
		data, err := a.readFileArg(file)
		if err != nil {
			return nil, fmt.Errorf("read device file: %w", err)
		}
		var out []string
		for line := range strings.Lines(string(data)) {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s names no devices", file)
		}
		return out, nil
	}
	ds, err := listDevices(ctx, c, f)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, errors.New("no device matches the filters")
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out, nil
}

// follow waits for the job, then reports it: outputs to --out, a table or JSON lines, and an
// exit error when any device did not succeed.
func (a *app) follow(ctx context.Context, c *Client, jobID string, total int, rf reportFlags, sigs <-chan os.Signal) error {
	w := a.newWatcher(c, jobID, total, !a.json && isTerminal(a.io.Err), sigs)
	w.ws = a.wsURL(c.Base)
	job, err := w.wait(ctx)
	if err != nil {
		return err
	}
	devs, err := jobDevices(ctx, c, jobID)
	if err != nil {
		return err
	}
	files := map[string]string{}
	if rf.out != "" {
		if files, err = writeOutputs(ctx, c, rf.out, devs); err != nil {
			return err
		}
	}
	if err := a.report(job, devs, files, w.live); err != nil {
		return err
	}
	bad := 0
	for _, d := range devs {
		if d.Status != "succeeded" {
			bad++
		}
	}
	if bad > 0 || job.Status != "completed" {
		return &exitError{code: ExitFailed, msg: fmt.Sprintf("job %s %s: %d of %d devices did not succeed", jobID, job.Status, bad, len(devs))}
	}
	return nil
}

func jobDevices(ctx context.Context, c *Client, jobID string) ([]apiwire.JobDevice, error) {
	q := url.Values{"limit": {"2000"}}
	var all []apiwire.JobDevice
	for {
		var page apiwire.JobDeviceList
		if err := c.Do(ctx, "GET", "/bulk/"+url.PathEscape(jobID)+"/devices", q, nil, "", &page); err != nil {
			return nil, fmt.Errorf("job %s devices: %w", jobID, err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		q.Set("cursor", page.Next)
	}
}

// writeOutputs fetches every device's run output into dir/<device>.txt, eight at a time, and
// returns the files written by device id. Devices without a run (cancelled before starting)
// get no file.
func writeOutputs(ctx context.Context, c *Client, dir string, devs []apiwire.JobDevice) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	var mu sync.Mutex
	files := map[string]string{}
	var firstErr error
	work := make(chan apiwire.JobDevice)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range work {
				p, err := writeOutput(ctx, c, dir, d)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if p != "" {
					files[d.DeviceID] = p
				}
				mu.Unlock()
			}
		})
	}
	for _, d := range devs {
		if d.RunID != "" {
			work <- d
		}
	}
	close(work)
	wg.Wait()
	return files, firstErr
}

func writeOutput(ctx context.Context, c *Client, dir string, d apiwire.JobDevice) (string, error) {
	name := d.DeviceID + ".txt"
	if !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("device id %q is not a safe file name", d.DeviceID)
	}
	resp, err := c.DoRaw(ctx, "GET", "/runs/"+url.PathEscape(d.RunID)+"/output")
	if isStatus(err, 404) {
		return "", nil // the run is gone (expired or purged)
	}
	if err != nil {
		return "", fmt.Errorf("output of %s: %w", d.DeviceID, err)
	}
	defer resp.Body.Close()
	if d.Status == "cancelled" && resp.Header.Get("X-Output-Bytes") == "0" {
		return "", nil // cancelled before it printed anything (or started): no file
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		return "", fmt.Errorf("write output of %s: %w", d.DeviceID, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return "", fmt.Errorf("write output of %s: %w", d.DeviceID, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write output of %s: %w", d.DeviceID, err)
	}
	return p, nil
}

// DeviceLine is one line of `bulk --json`: a device's outcome.
type DeviceLine struct {
	Type string `json:"type"` // "device"
	apiwire.JobDevice
	JobID string `json:"job_id"`
	// OutputFile is where --out wrote the device's output.
	OutputFile string `json:"output_file,omitempty"`
}

// JobLine is the last line of `bulk --json`: the job's summary.
type JobLine struct {
	Type string `json:"type"` // "job"
	apiwire.Job
	// Live says how progress was followed: "websocket" or "polling".
	Live string `json:"live,omitempty"`
}

func (a *app) report(job apiwire.Job, devs []apiwire.JobDevice, files map[string]string, live string) error {
	if a.json {
		enc := json.NewEncoder(a.io.Out)
		for _, d := range devs {
			if err := enc.Encode(DeviceLine{Type: "device", JobDevice: d, JobID: job.JobID, OutputFile: files[d.DeviceID]}); err != nil {
				return fmt.Errorf("write json: %w", err)
			}
		}
		if err := enc.Encode(JobLine{Type: "job", Job: job, Live: live}); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	last := "RUN"
	if len(files) > 0 {
		last = "OUTPUT"
	}
	fmt.Fprintln(tw, "DEVICE\tSTATUS\tREASON\tDURATION\t"+last)
	for _, d := range devs {
		dur := ""
		if d.DurationMS > 0 {
			dur = (time.Duration(d.DurationMS) * time.Millisecond).String()
		}
		out := files[d.DeviceID]
		if out == "" {
			out = d.RunID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.DeviceID, d.Status, d.Reason, dur, out)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintf(a.io.Out, "job %s %s: %s\n", job.JobID, job.Status, formatCounts(job.Counts))
	return nil
}

func (a *app) runCommand() *cobra.Command {
	var jf jobFlags
	var sf sequenceFlags
	var raw bool
	cmd := &cobra.Command{
		Use:   "run DEVICE (-- COMMAND | --command C [--prompt E=A] [--secret-prompt E] ... [--stop-on-error])",
		Short: "Run one command, or a sequence, on one device and print its output",
		Long: `Run one command on one device (POST /v1/runs), wait for it to finish and print its
output. The exit code is 2 when the run did not succeed; --json prints the run record with
its output. Control characters in the output are printed visibly (ESC as ^[), so a device
cannot send escape sequences to the terminal; --raw prints the output byte for byte.

--command (repeatable) runs a sequence instead, in order on one session; each command's
output is printed under a line naming it and its status. --prompt EXPECT=ANSWER answers a
question of the --command before it (the device's last line ends with EXPECT), --prompt-regex
REGEX=ANSWER matches the whole line, and --secret-prompt EXPECT reads the answer from stdin,
one line per secret prompt (or asks on a terminal): a secret never goes on the command line.
--stop-on-error stops at the first failing command.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			seq, err := sf.commands(a, args[1:])
			if err != nil {
				return err
			}
			body := apiwire.RunRequest{DeviceID: args[0], Options: jf.options()}
			body.Options.StopOnError = sf.stop
			switch {
			case seq != nil:
				body.Commands = seq
			case len(args) > 1:
				body.Command = commandLine(args[1:])
			default:
				return errors.New("give the command after the device, or a sequence with --command")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			sigs, stop := a.signals.Notify()
			defer stop()
			var acc apiwire.RunAccepted
			if err := c.Do(ctx, "POST", "/runs", nil, body, "", &acc); err != nil {
				return fmt.Errorf("start run: %w", err)
			}
			if _, err := a.newWatcher(c, acc.JobID, 1, false, sigs).wait(ctx); err != nil {
				return err
			}
			var r apiwire.Run
			if err := c.Do(ctx, "GET", "/runs/"+url.PathEscape(acc.RunID), nil, nil, "", &r); err != nil {
				return fmt.Errorf("get run %s: %w", acc.RunID, err)
			}
			if err := a.printRun(ctx, c, r, seq != nil, raw); err != nil {
				return err
			}
			if r.Status != "succeeded" {
				msg := fmt.Sprintf("run %s %s", r.ID, r.Status)
				if r.Reason != "" {
					msg += " (" + r.Reason + ")"
				}
				if r.Message != "" {
					msg += ": " + terminalSafeString(r.Message)
				}
				return &exitError{code: ExitFailed, msg: msg}
			}
			return nil
		},
	}
	jf.add(cmd, false)
	sf.add(cmd)
	cmd.Flags().BoolVar(&raw, "raw", false, "print the output byte for byte, terminal control sequences included")
	return cmd
}

// printRun prints a finished run's output: with --json the run record and its output; for a
// sequence (unless raw) each command's output under a line naming it; else the whole output.
func (a *app) printRun(ctx context.Context, c *Client, r apiwire.Run, sequence, raw bool) error {
	base := "/runs/" + url.PathEscape(r.ID) + "/output"
	if a.json {
		resp, err := c.DoRaw(ctx, "GET", base)
		if err != nil {
			return fmt.Errorf("output of run %s: %w", r.ID, err)
		}
		defer resp.Body.Close()
		out, err := readAll(resp.Body)
		if err != nil {
			return fmt.Errorf("output of run %s: %w", r.ID, err)
		}
		return a.printJSON(struct {
			apiwire.Run
			Output string `json:"output"`
		}{r, string(out)})
	}
	if !sequence || raw {
		resp, err := c.DoRaw(ctx, "GET", base)
		if err != nil {
			return fmt.Errorf("output of run %s: %w", r.ID, err)
		}
		defer resp.Body.Close()
		if err := copyOutput(a.io.Out, resp.Body, raw); err != nil {
			return fmt.Errorf("output of run %s: %w", r.ID, err)
		}
		return nil
	}
	for i, rc := range r.Commands {
		head := fmt.Sprintf("--- [%d/%d] %s: %s", i+1, len(r.Commands), terminalSafeString(rc.Command), rc.Status)
		if rc.Reason != "" {
			head += " (" + rc.Reason + ")"
		}
		fmt.Fprintln(a.io.Out, head)
		resp, err := c.DoRaw(ctx, "GET", base+"?command="+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("output of command %d of run %s: %w", i, r.ID, err)
		}
		err = copyOutput(a.io.Out, resp.Body, false)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("output of command %d of run %s: %w", i, r.ID, err)
		}
	}
	return nil
}

func (a *app) jobCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "List, show, cancel or wait for bulk jobs"}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the newest jobs, whoever started them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 200 {
				return fmt.Errorf("--limit must be from 1 to 200")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var page apiwire.JobList
			if err := c.Do(cmd.Context(), "GET", "/bulk", url.Values{"limit": {strconv.Itoa(limit)}}, nil, "", &page); err != nil {
				return fmt.Errorf("list jobs: %w", err)
			}
			if a.json {
				if page.Items == nil {
					page.Items = []apiwire.JobSummary{}
				}
				return a.printJSON(page.Items)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATUS\tDEVICES\tREQUESTED BY\tCREATED\tCOMMAND")
			for _, j := range page.Items {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", j.JobID, j.Status, j.DeviceCount, j.RequestedBy, j.CreatedAt.Local().Format("2006-01-02 15:04:05"), j.Command)
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many jobs (1-200)")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job's summary and counts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := a.newWatcher(c, args[0], 0, false, nil).job(cmd.Context())
			if err != nil {
				return err
			}
			return a.printJob(j)
		},
	}
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job: running devices finish, the rest end cancelled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var j apiwire.Job
			if err := c.Do(cmd.Context(), "POST", "/bulk/"+url.PathEscape(args[0])+"/cancel", nil, nil, "", &j); err != nil {
				return fmt.Errorf("cancel job %s: %w", args[0], err)
			}
			return a.printJob(j)
		},
	}
	var rf reportFlags
	wait := &cobra.Command{
		Use:   "wait ID",
		Short: "Follow a job until it ends, then report it as bulk does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			sigs, stop := a.signals.Notify()
			defer stop()
			j, err := a.newWatcher(c, args[0], 0, false, nil).job(cmd.Context())
			if err != nil {
				return err
			}
			return a.follow(cmd.Context(), c, args[0], j.DeviceCount, rf, sigs)
		},
	}
	wait.Flags().StringVar(&rf.out, "out", "", "write each device's output to DIR/<device>.txt")
	wait.Flags().BoolVarP(&a.yes, "yes", "y", false, "on Ctrl-C cancel the job without asking")
	cmd.AddCommand(list, show, cancel, wait, a.rerunCommand())
	return cmd
}

func (a *app) printJob(j apiwire.Job) error {
	if a.json {
		return a.printJSON(j)
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"job_id", j.JobID}, {"status", j.Status}, {"command", j.Command}, {"requested_by", j.RequestedBy},
		{"devices", strconv.Itoa(j.DeviceCount)}, {"batches", fmt.Sprintf("%d of %d done", j.BatchesDone, j.Batches)},
		{"counts", formatCounts(j.Counts)}, {"created_at", j.CreatedAt.Format(time.RFC3339)},
	}
	if j.FinishedAt != nil {
		rows = append(rows, [2]string{"finished_at", j.FinishedAt.Format(time.RFC3339)})
	}
	if j.CancelRequested {
		rows = append(rows, [2]string{"cancel_requested", "true"})
	}
	if j.StopStatus != "" {
		rows = append(rows, [2]string{"stop_status", j.StopStatus})
	}
	if j.Error != "" {
		rows = append(rows, [2]string{"error", j.Error})
	}
	if j.SavedJobID != "" {
		rows = append(rows, [2]string{"saved_job", j.SavedJobID})
	}
	if j.RerunOf != "" {
		rows = append(rows, [2]string{"rerun_of", j.RerunOf})
	}
	if len(j.Reruns) > 0 {
		rows = append(rows, [2]string{"reruns", strings.Join(j.Reruns, ", ")})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
