package api

import (
	"encoding/json"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// The API's edge: requests decode into apiwire types and become domain values here; domain
// values become apiwire types before they are written. Nil slices and maps stay nil, so the
// JSON is what the domain values would have produced.

// decodeDeviceInput decodes a create body or a JSON import row. It also refuses an explicit
// port 0, which the domain would take for "not given" and replace with the default; the port is
// read a second time, as a pointer, only when the wire type's is 0.
func decodeDeviceInput(raw []byte) (apiwire.DeviceInput, *Error) {
	var in apiwire.DeviceInput
	if e := decodeStrict(raw, &in); e != nil {
		return in, e
	}
	if in.Port == 0 {
		var given struct {
			Port *int `json:"port"`
		}
		if json.Unmarshal(raw, &given) == nil && given.Port != nil {
			return in, portZero("")
		}
	}
	return in, nil
}

// portZero is the error of an explicit port 0; prefix is prepended to the field.
func portZero(prefix string) *Error {
	return &Error{Code: "invalid", Field: prefix + "port", Message: "must be from 1 to 65535"}
}

// DeviceInputFromWire converts a wire device input to the domain's, as the API does for a create
// body or an import row; a zero port means the default. Code that seeds the inventory with the
// simulator's devices (apiwire.DeviceInput) converts them with it too.
func DeviceInputFromWire(in apiwire.DeviceInput) device.Input {
	return device.Input{
		Device: device.Device{
			ID: in.ID, Name: in.Name, Host: in.Host, Port: in.Port, Platform: in.Platform, Username: in.Username,
			AuthMethod: device.AuthMethod(in.AuthMethod), Tags: in.Tags, Site: in.Site, HostKey: in.HostKey,
			TrustOnFirstUse: in.TrustOnFirstUse, LegacyAlgorithms: in.LegacyAlgorithms, CredentialProfile: in.CredentialProfile,
			JumpHostIDs: in.JumpHostIDs,
		},
		Credential: device.Credential{Password: in.Password, PrivateKey: in.PrivateKey, Passphrase: in.Passphrase, EnableSecret: in.EnableSecret},
	}
}

// patchFromWire converts a PATCH body to the domain's patch.
func patchFromWire(p apiwire.DevicePatch) device.Patch {
	var am *device.AuthMethod
	if p.AuthMethod != nil {
		m := device.AuthMethod(*p.AuthMethod)
		am = &m
	}
	return device.Patch{
		Name: p.Name, Host: p.Host, Port: p.Port, Platform: p.Platform, Username: p.Username, AuthMethod: am,
		Tags: p.Tags, Site: p.Site, HostKey: p.HostKey, TrustOnFirstUse: p.TrustOnFirstUse,
		LegacyAlgorithms: p.LegacyAlgorithms, CredentialProfile: p.CredentialProfile, JumpHostIDs: p.JumpHostIDs,
		Password: p.Password, PrivateKey: p.PrivateKey, Passphrase: p.Passphrase, EnableSecret: p.EnableSecret, Version: p.Version,
	}
}

func optionsFromWire(o apiwire.BulkOptions) bulk.Options {
	return bulk.Options{TimeoutS: o.TimeoutS, MaxConcurrency: o.MaxConcurrency, MaxErrors: o.MaxErrors, StopOnError: o.StopOnError}
}

func optionsToWire(o bulk.Options) apiwire.BulkOptions {
	return apiwire.BulkOptions{TimeoutS: o.TimeoutS, MaxConcurrency: o.MaxConcurrency, MaxErrors: o.MaxErrors, StopOnError: o.StopOnError}
}

func bulkRequestFromWire(r apiwire.BulkRequest) bulk.Request {
	return bulk.Request{Command: r.Command, Commands: commandsFromWire(r.Commands), DeviceIDs: r.DeviceIDs, RequestedBy: r.RequestedBy, Options: optionsFromWire(r.Options)}
}

// commandsFromWire is a request's sequence (nil when it sent none, so "exactly one of command
// or commands" can tell an empty list from a missing one).
func commandsFromWire(items []apiwire.CommandItem) []bulk.Command {
	if items == nil {
		return nil
	}
	out := make([]bulk.Command, len(items))
	for i, it := range items {
		out[i].Command = it.Command
		for _, p := range it.Prompts {
			bp := bulk.Prompt{Expect: p.Expect, Secret: p.Secret, Regex: p.Regex}
			if p.Answer != nil {
				bp.Answer = *p.Answer
			}
			out[i].Prompts = append(out[i].Prompts, bp)
		}
	}
	return out
}

// commandsToWire is a job's sequence as the API shows it: secret answers left out.
func commandsToWire(cmds []bulk.Command) []apiwire.CommandItem {
	if cmds == nil {
		return nil
	}
	out := make([]apiwire.CommandItem, len(cmds))
	for i, c := range cmds {
		out[i].Command = c.Command
		for _, p := range c.Prompts {
			wp := apiwire.Prompt{Expect: p.Expect, Secret: p.Secret, Regex: p.Regex}
			if !p.Secret {
				a := p.Answer
				wp.Answer = &a
			}
			out[i].Prompts = append(out[i].Prompts, wp)
		}
	}
	return out
}

// runCommandsToWire is a run's per-command results (run.Run.Results), never null.
func runCommandsToWire(r run.Run) []apiwire.RunCommand {
	res := r.Results()
	out := make([]apiwire.RunCommand, len(res))
	for i, c := range res {
		out[i] = apiwire.RunCommand{Command: c.Command, Status: string(c.Status), Reason: c.Reason, ExitStatus: c.ExitStatus, Bytes: c.Bytes}
	}
	return out
}

func deviceToWire(d device.Device) apiwire.Device {
	out := apiwire.Device{
		ID: d.ID, Name: d.Name, Host: d.Host, Port: d.Port, Platform: d.Platform, Username: d.Username,
		AuthMethod: string(d.AuthMethod), Tags: d.Tags, Site: d.Site, HostKey: d.HostKey,
		TrustOnFirstUse: d.TrustOnFirstUse, LegacyAlgorithms: d.LegacyAlgorithms, CredentialProfile: d.CredentialProfile,
		HasCredential: d.HasCredential, Version: d.Version, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		HostKeyLearnedAt: d.HostKeyLearnedAt, JumpHostIDs: d.JumpHostIDs, HasEnableSecret: d.HasEnableSecret,
	}
	if d.HostKey != "" {
		out.HostKeyFingerprint = device.HostKeyFingerprint(d.HostKey)
	}
	if p := d.PendingHostKey; p != nil {
		out.PendingHostKey = &apiwire.PendingHostKey{Key: p.Key, Fingerprint: p.Fingerprint, SeenAt: p.SeenAt}
	}
	return out
}

func fieldErrorsToWire(fs []device.FieldError) []apiwire.FieldError {
	return convertAll(fs, func(f device.FieldError) apiwire.FieldError {
		return apiwire.FieldError{Field: f.Field, Message: f.Message}
	})
}

func importResultToWire(r device.ImportResult) apiwire.ImportResult {
	return apiwire.ImportResult{
		Mode: string(r.Mode), Created: r.Created, Failed: r.Failed,
		Rows: convertAll(r.Rows, func(row device.RowResult) apiwire.RowResult {
			return apiwire.RowResult{Row: row.Row, ID: row.ID, Status: row.Status, Errors: fieldErrorsToWire(row.Errors)}
		}),
	}
}

func runToWire(r run.Run) apiwire.Run {
	return apiwire.Run{
		ID: r.ID, DeviceID: r.DeviceID, Command: r.Command, JobID: r.JobID, RequestedBy: r.RequestedBy,
		Status: string(r.Status), Reason: r.Reason, Message: r.Message, ExitStatus: r.ExitStatus,
		Bytes: r.Bytes, Chunks: r.Chunks, Truncated: r.Truncated, OutputDigest: r.OutputDigest, Attempt: r.Attempt,
		ContentSHA256: r.ContentSHA256, FilteredDigest: r.FilteredDigest, Changed: r.Changed, PreviousRunID: r.PreviousRunID,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		Timings: apiwire.Timings{
			ConnectMS: r.Timings.ConnectMS, AuthMS: r.Timings.AuthMS, FirstByteMS: r.Timings.FirstByteMS, TotalMS: r.Timings.TotalMS,
		},
		Commands: runCommandsToWire(r),
	}
}

func countsToWire(c map[run.Status]int) map[string]int {
	if c == nil {
		return nil
	}
	out := make(map[string]int, len(c))
	for k, v := range c {
		out[string(k)] = v
	}
	return out
}

func jobToWire(j bulk.Job) apiwire.Job {
	return apiwire.Job{
		JobID: j.ID, Command: j.Command, Commands: commandsToWire(j.Commands), RequestedBy: j.RequestedBy, DeviceCount: j.DeviceCount, Batches: j.Batches,
		Status: string(j.Status), Options: optionsToWire(j.Options), Counts: countsToWire(j.Counts), Seq: j.Seq,
		Error: j.Error, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, CancelRequested: j.CancelRequested,
		StopStatus: string(j.StopStatus), BatchesDone: j.BatchesDone, Sites: j.Sites,
		SavedJobID: j.SavedJobID, RerunOf: j.RerunOf, Reruns: j.Reruns,
	}
}

func jobSummaryToWire(j bulk.JobSummary) apiwire.JobSummary {
	return apiwire.JobSummary{
		JobID: j.ID, Command: j.Command, RequestedBy: j.RequestedBy, DeviceCount: j.DeviceCount,
		Status: string(j.Status), Error: j.Error, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, Sites: j.Sites,
	}
}

// jobDeviceToWire is a device of job j with its per-command results (their commands from j).
func jobDeviceToWire(d bulk.DeviceState, j bulk.Job) apiwire.JobDevice {
	out := apiwire.JobDevice{
		DeviceID: d.DeviceID, Status: string(d.Status), RunID: d.RunID, Reason: d.Reason,
		DurationMS: d.DurationMS, OutputDigest: d.OutputDigest, Changed: d.Changed, Seq: d.Seq, Batch: d.Batch,
	}
	for _, c := range d.CommandResults(j) {
		out.Commands = append(out.Commands, apiwire.RunCommand{Command: c.Command, Status: string(c.Status), Reason: c.Reason, ExitStatus: c.ExitStatus, Bytes: c.Bytes})
	}
	return out
}

// eventsToWire is the wire form of progress events; a bulk_progress event carries no counts
// (progress contract version 2).
func eventsToWire(events []bulk.Event) []apiwire.ProgressEvent {
	out := make([]apiwire.ProgressEvent, len(events))
	for i, e := range events {
		out[i] = apiwire.ProgressEvent{
			Type: e.Type, JobID: e.JobID, DeviceID: e.DeviceID, Status: e.Status, RunID: e.RunID, Reason: e.Reason,
			DurationMS: e.DurationMS, OutputDigest: e.OutputDigest, Changed: e.Changed, Seq: e.Seq, At: e.At,
		}
		if e.Type == bulk.EventJobDone {
			out[i].Counts = countsToWire(e.Counts)
		}
	}
	return out
}

func retentionSettingsToWire(s retention.Settings) apiwire.RetentionSettings {
	return apiwire.RetentionSettings{MaxDays: s.MaxDays, MaxBytes: s.MaxBytes, Cron: s.Cron, Schedule: s.Schedule}
}

func retentionStatsToWire(s *retention.Stats) *apiwire.RetentionStats {
	if s == nil {
		return nil
	}
	return &apiwire.RetentionStats{
		Type: s.Type, RunsDeleted: s.RunsDeleted, ChunksDeleted: s.ChunksDeleted, BytesFreed: s.BytesFreed,
		RunsSkipped: s.RunsSkipped, Complete: s.Complete, Cutoff: s.Cutoff, PurgedThrough: s.PurgedThrough,
		DevicesChecked: s.DevicesChecked, DevicesOverCap: s.DevicesOverCap, DevicesStillOver: s.DevicesStillOver,
		DurationMS: s.DurationMS,
	}
}

func retentionReportToWire(r retention.Report) apiwire.RetentionReport {
	return apiwire.RetentionReport{
		Trigger: r.Trigger, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Settings: retentionSettingsToWire(r.Settings),
		Age: retentionStatsToWire(r.Age), Bytes: retentionStatsToWire(r.Bytes), Complete: r.Complete,
		Continuation: r.Continuation, Error: r.Error,
	}
}

// convertAll converts each element; nil stays nil.
// listed converts the items of a list answer, which is never null: none is [].
func listed[S ~[]E, E, W any](s S, conv func(E) W) []W {
	if out := convertAll(s, conv); out != nil {
		return out
	}
	return []W{}
}

func convertAll[S ~[]E, E, W any](s S, conv func(E) W) []W {
	if s == nil {
		return nil
	}
	out := make([]W, len(s))
	for i, e := range s {
		out[i] = conv(e)
	}
	return out
}
