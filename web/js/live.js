// JobFeed keeps one job's state live: it reads the job and its devices over HTTP, subscribes over
// the WebSocket API, applies snapshots and bulk_progress events by per-device seq (so duplicates
// and out-of-order delivery are harmless), reconnects with backoff when the socket drops, and
// catches up on missed events from GET /v1/bulk/{id}/events — also while no socket is open at
// all, so progress keeps coming when WebSockets are blocked.
import { get, getConfig, getToken } from "./api.js";
import { TERMINAL } from "./ui.js";

/** JOB_DONE are the job statuses after which nothing changes. */
export const JOB_DONE = ["completed", "cancelled", "stopped", "failed"];

export class JobFeed {
  constructor(jobId, onChange) {
    this.jobId = jobId;
    this.onChange = onChange;
    this.job = null;
    this.devices = new Map(); // device_id -> {device_id, status, run_id, reason, duration_ms, seq, output_digest}
    this.counts = {};
    this.countsSeq = -1;
    this.contig = 0; // every event with seq <= contig has been applied (or is covered by a snapshot)
    this.pending = new Set(); // applied seqs above contig
    this.state = "connecting"; // connecting | live | reconnecting | polling | done | closed
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.pollTimer = 0;
    this.lastMessage = 0;
    this.closed = false;
    this.events = 0; // pushed messages received (for tests and the status line)
  }

  /** emit tells the page once per animation frame, however many events arrived in it. */
  emit() {
    if (this.closed || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (!this.closed) this.onChange(this);
    });
  }

  async start() {
    const [job, devices] = await Promise.all([
      get(`/v1/bulk/${encodeURIComponent(this.jobId)}`),
      this.loadDevices(),
    ]);
    this.applyJob(job);
    for (const d of devices) this.applyDevice(d);
    this.emit();
    if (JOB_DONE.includes(this.job.status)) {
      this.state = "done";
      this.emit();
      return;
    }
    this.connect();
    // A quiet watchdog: when nothing has arrived for a while, read the event log (cheap, and it
    // fills any gap a lost push left).
    this.pollTimer = setInterval(() => {
      if (this.closed || this.state === "done") return;
      // Every device is done but job_done has not come: the job's end is being recorded.
      const quiet = this.isDone() ? 1000 : 5000;
      if (this.state !== "live" || Date.now() - this.lastMessage > quiet) this.catchUp();
    }, 2000);
  }

  async loadDevices() {
    const all = [];
    let cursor = "";
    do {
      const q = new URLSearchParams({ limit: "2000" });
      if (cursor) q.set("cursor", cursor);
      const page = await get(`/v1/bulk/${encodeURIComponent(this.jobId)}/devices?${q}`);
      all.push(...page.items);
      cursor = page.next || "";
    } while (cursor);
    return all;
  }

  connect() {
    const cfg = getConfig();
    if (!cfg.ws_url || this.closed) {
      this.state = "polling";
      this.emit();
      return;
    }
    this.connects = (this.connects || 0) + 1;
    const ws = new WebSocket(cfg.ws_url + (cfg.ws_url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(getToken()));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      ws.send(JSON.stringify({ action: "subscribe", job_id: this.jobId }));
    };
    ws.onmessage = (ev) => {
      this.lastMessage = Date.now();
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (m.job_id && m.job_id !== this.jobId) return;
      // A burst of events comes as one "events" message holding them in order.
      for (const e of m.type === "events" ? m.events || [] : [m]) {
        this.events++;
        this.onMessage(e);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed || this.state === "done") return;
      this.state = "reconnecting";
      this.emit();
      this.catchUp();
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt++;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  onMessage(m) {
    switch (m.type) {
      case "snapshot": {
        if (m.job) this.applyJob(m.job);
        // Snapshot entries carry each device's status, duration and output digest.
        for (const d of m.devices || []) this.applyDevice(d);
        if (m.seq > this.contig && (!m.parts || m.part === m.parts)) this.advanceTo(m.seq);
        if (this.state !== "done") this.state = "live";
        if (m.job && JOB_DONE.includes(m.job.status)) this.finish(m.job.status);
        break;
      }
      case "bulk_progress":
        this.applyEvent(m);
        if (this.state !== "done") this.state = "live";
        break;
      case "job_done":
        this.applyEvent(m);
        this.finish(m.status);
        break;
      case "error":
        this.error = m.message;
        break;
      default:
        return;
    }
    this.emit();
  }

  /** catchUp reads the events after the last contiguous seq from the API. */
  async catchUp() {
    if (this.catching || this.closed) return;
    this.catching = true;
    try {
      for (;;) {
        const since = this.contig;
        const page = await get(`/v1/bulk/${encodeURIComponent(this.jobId)}/events?since=${since}&limit=500`);
        for (const e of page.items) this.applyEvent(e);
        if (page.items.length) this.advanceTo(page.items[page.items.length - 1].seq);
        const done = page.items.find((e) => e.type === "job_done");
        if (done) this.finish(done.status);
        if (page.items.length < 500) break;
      }
      this.emit();
    } catch {
      // The next tick tries again.
    } finally {
      this.catching = false;
    }
  }

  applyJob(job) {
    if (!this.job || job.seq >= (this.job.seq || 0)) this.job = { ...this.job, ...job };
    this.setCounts(job.counts, job.seq);
  }

  setCounts(counts, seq) {
    if (counts && seq >= this.countsSeq) {
      this.counts = counts;
      this.countsSeq = seq;
    }
  }

  applyDevice(d) {
    const held = this.devices.get(d.device_id);
    if (held && held.seq >= d.seq) return false;
    this.devices.set(d.device_id, { ...held, ...d });
    return true;
  }

  applyEvent(e) {
    if (e.seq > this.contig) this.pending.add(e.seq);
    this.advanceTo(this.contig);
    this.setCounts(e.counts, e.seq);
    if (this.job && e.seq > (this.job.seq || 0)) this.job.seq = e.seq;
    if (e.type === "bulk_progress" && e.device_id) {
      const d = { device_id: e.device_id, status: e.status, run_id: e.run_id, seq: e.seq };
      if (e.reason !== undefined) d.reason = e.reason;
      if (e.duration_ms !== undefined) d.duration_ms = e.duration_ms;
      if (e.output_digest !== undefined) d.output_digest = e.output_digest;
      this.applyDevice(d);
    }
  }

  advanceTo(seq) {
    if (seq > this.contig) this.contig = seq;
    for (const s of this.pending) if (s <= this.contig) this.pending.delete(s);
    while (this.pending.has(this.contig + 1)) this.pending.delete(++this.contig);
  }

  doneCount() {
    return TERMINAL.reduce((n, s) => n + (this.counts[s] || 0), 0);
  }

  isDone() {
    const total = this.job ? this.job.device_count : 0;
    return total > 0 && this.doneCount() >= total;
  }

  async finish(status) {
    if (this.state === "done") return;
    this.state = "done";
    if (status && this.job) this.job.status = status;
    clearInterval(this.pollTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
    this.emit();
    // The final summary (finished_at, status) and any device fields the pushes did not carry.
    try {
      const [job, devices] = await Promise.all([get(`/v1/bulk/${encodeURIComponent(this.jobId)}`), this.loadDevices()]);
      this.applyJob(job);
      if (status) this.job.status = status;
      for (const d of devices) {
        const held = this.devices.get(d.device_id);
        this.devices.set(d.device_id, { ...held, ...d });
      }
      this.emit();
    } catch {
      // The pushed state stands.
    }
  }

  /** reconnectNow drops the socket as a network failure would (used by the tests). */
  dropConnection() {
    if (this.ws) this.ws.close();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    cancelAnimationFrame(this.frame);
    clearInterval(this.pollTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
  }
}
