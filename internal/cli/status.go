package cli

// runStatuses are the device statuses in display order.
var runStatuses = []string{"queued", "running", "succeeded", "failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled"}

// terminalRun reports whether a run or device status is final.
func terminalRun(s string) bool { return s != "" && s != "queued" && s != "running" }

// terminalJob reports whether a job status is final.
func terminalJob(s string) bool { return s != "" && s != "queued" && s != "running" }
