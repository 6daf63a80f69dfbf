// JobFeed keeps one job's state live (progress contract version 2, docs/websocket.md): it reads
// the job and its devices over HTTP, subscribes over the WebSocket API, applies snapshots and
// events to a device only when their seq is above the one held (so duplicates, late and
// out-of-order delivery are harmless), counts the devices it holds by status, reconnects with
// backoff when the socket drops and, while no socket is open, catches up from
// GET /v1/bulk/{id}/events, so progress keeps coming when WebSockets are blocked. At its token's
// exp the server stops pushing while the socket stays open: the feed then drops the socket and
// reads over HTTP, where the API's 401 signs the user out.
import { get, getConfig, getToken, identity } from "./api.js";
import { TERMINAL } from "./ui.js";

/** JOB_DONE are the job statuses after which nothing changes. */
export const JOB_DONE = ["completed", "cancelled", "stopped", "failed"];

// Fields of an event that are not the device's state.
const EVENT_ONLY = new Set(["type", "job_id", "at", "counts"]);

export class JobFeed {
  constructor(jobId, onChange) {
    this.jobId = jobId;
    this.onChange = onChange;
    this.job = null;
    this.devices = new Map(); // device_id -> {device_id, status, run_id, reason, duration_ms, seq, output_digest, changed, …}
    this.tally = null; // the devices held counted by status (null: to be counted again)
    this.finalCounts = null; // the job's final counts, once it ended
    this.finalFromEvent = false; // finalCounts came from job_done, which wins over any read
    this.seq = 0; // the highest seq applied: where a catch-up starts
    this.state = "connecting"; // connecting | live | reconnecting | polling | expired | done | closed
    this.error = ""; // the server's last refusal over the socket (type "error"), until a snapshot comes
    this.errorCode = "";
    this.wsExp = 0; // the exp of the token the socket was opened with
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.pollTimer = 0;
    this.lastMessage = 0;
    this.closed = false;
    this.events = 0; // pushed messages received (for tests and the status line)
    this.catchUpLimit = 500; // the page size of a catch-up read (the tests lower it to make pages)
    this.catchUpPages = 0; // the most pages one catch-up read (for the tests)
  }

  /**
   * counts are the devices per status: the job's final counts once it ended (job_done's win);
   * before that the devices held counted by status, the job's devices not held counted queued.
   */
  get counts() {
    if (this.finalCounts) return this.finalCounts;
    if (!this.tally) {
      const c = {};
      for (const d of this.devices.values()) c[d.status] = (c[d.status] || 0) + 1;
      const unknown = (this.job ? this.job.device_count : 0) - this.devices.size;
      if (unknown > 0) c.queued = (c.queued || 0) + unknown;
      this.tally = c;
    }
    return this.tally;
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
    for (const d of devices) this.applyDevice(d);
    this.applyJob(job);
    this.emit();
    if (JOB_DONE.includes(this.job.status)) {
      this.state = "done";
      this.emit();
      return;
    }
    this.connect();
    this.pollTimer = setInterval(() => this.tick(), 2000);
  }

  /**
   * tick runs every 2 s. A socket whose token has expired goes (expire). While no socket is open,
   * it reads what moved. While live, pushes are best effort: when every device is done and
   * job_done has not come for 2 s, it reads the job to see whether it ended. It returns the read
   * started, if any.
   */
  tick(now = Date.now()) {
    if (this.closed || this.state === "done") return undefined;
    if (this.ws && this.wsExp && now >= this.wsExp * 1000) return this.expire(tokenLive(now));
    if (this.state !== "live") return this.catchUp();
    if (this.isDone() && now - this.lastMessage > 2000) return this.checkEnded();
    return undefined;
  }

  /**
   * expire drops the socket, whose token has expired: the server pushes nothing after its exp.
   * With reconnect (a newer token is held) it connects again; else it reads over HTTP, where the
   * API's 401 signs the user out. It returns the read started, if any.
   */
  expire(reconnect) {
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
    if (this.closed || this.state === "done") return undefined;
    let read;
    if (reconnect) {
      this.state = "reconnecting";
      this.connect();
    } else {
      this.state = "expired";
      read = this.catchUp();
    }
    this.emit();
    return read;
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
    if (!tokenLive()) {
      // The server would refuse the socket: read over HTTP (its 401 signs the user out).
      this.state = "expired";
      this.emit();
      return;
    }
    this.wsExp = identity().exp;
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
      // What moved while the socket was down; the next snapshot brings the whole state again.
      this.catchUp();
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt++;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  onMessage(m) {
    switch (m.type) {
      case "snapshot": {
        // Snapshot entries carry each device's status, duration and output digest.
        for (const d of m.devices || []) this.applyDevice(d);
        if (m.job) this.applyJob(m.job);
        // The snapshot's seq is its highest device seq: a catch-up may start there once every part is in.
        if (!m.parts || m.part === m.parts) this.advance(m.seq);
        if (this.state !== "done") this.state = "live";
        this.error = this.errorCode = "";
        if (m.job && JOB_DONE.includes(m.job.status)) this.finish(m.job.status);
        break;
      }
      case "bulk_progress":
        this.applyEvent(m);
        if (this.state !== "done") this.state = "live";
        break;
      case "job_done":
        this.applyEvent(m);
        break;
      case "error":
        this.error = m.message || m.code || "refused";
        this.errorCode = m.code || "";
        // A subscribe after the token's exp: no reconnect with it helps.
        if (m.code === "token_expired") this.expire(false);
        // A refused subscribe brings no snapshot: the 2 s reads carry the progress.
        else if (this.state === "connecting" || this.state === "reconnecting") this.state = "polling";
        break;
      default:
        return;
    }
    this.emit();
  }

  /**
   * catchUp reads the latest state of the devices that moved since the highest seq applied, page
   * by page (cursor=next, the same since) until a page has no next, and applies it by the device
   * rule.
   */
  async catchUp() {
    if (this.catching || this.closed || this.state === "done") return;
    this.catching = true;
    try {
      const since = this.seq;
      let cursor = "";
      let ended = null;
      let again = true;
      for (let pages = 1; ; pages++) {
        const q = new URLSearchParams({ since: String(since), limit: String(this.catchUpLimit) });
        if (cursor) q.set("cursor", cursor);
        const page = await get(`/v1/bulk/${encodeURIComponent(this.jobId)}/events?${q}`);
        if (this.closed) return;
        this.catchUpPages = Math.max(this.catchUpPages, pages);
        for (const e of page.items || []) {
          if (e.type === "job_done") ended = e;
          else this.applyEvent(e);
        }
        this.emit();
        if (page.next) {
          cursor = page.next;
          continue;
        }
        // The job ended while this pass read its pages: a page read before the end may hold a
        // device's state from before its last change. Read the pages once more, now that
        // nothing moves, before the job is done.
        if (ended && pages > 1 && again) {
          again = false;
          ended = null;
          cursor = "";
          continue;
        }
        break;
      }
      if (ended) this.applyEvent(ended);
    } catch {
      // The next tick tries again.
    } finally {
      this.catching = false;
    }
  }

  /** checkEnded reads the job and finishes when it has ended (its job_done push was lost). */
  async checkEnded() {
    if (this.checking) return;
    this.checking = true;
    try {
      const job = await get(`/v1/bulk/${encodeURIComponent(this.jobId)}`);
      if (this.closed || this.state === "done") return;
      this.applyJob(job);
      if (JOB_DONE.includes(job.status)) this.finish(job.status);
    } catch {
      // The next tick tries again.
    } finally {
      this.checking = false;
    }
  }

  /** applyJob takes a summary of the job; an ended job's counts are final (job_done's win). */
  applyJob(job) {
    if (!this.job || !(job.seq < this.job.seq)) this.job = { ...this.job, ...job };
    this.tally = null;
    if (JOB_DONE.includes(job.status) && job.counts && !this.finalFromEvent) this.finalCounts = job.counts;
  }

  /** applyDevice applies a device's state if its seq is above the one held; it reports whether it did. */
  applyDevice(d) {
    const held = this.devices.get(d.device_id);
    if (held && !(d.seq > held.seq)) return false;
    this.devices.set(d.device_id, { ...held, ...d });
    this.tally = null;
    this.advance(d.seq);
    return true;
  }

  /** applyEvent applies a bulk_progress event to its device, or ends the job on job_done. */
  applyEvent(e) {
    if (e.type === "job_done") {
      if (e.counts) {
        this.finalCounts = e.counts;
        this.finalFromEvent = true;
      }
      this.advance(e.seq);
      this.finish(e.status);
      return;
    }
    if (e.type !== "bulk_progress" || !e.device_id) return;
    const d = {};
    for (const [k, v] of Object.entries(e)) if (!EVENT_ONLY.has(k)) d[k] = v;
    this.applyDevice(d);
  }

  advance(seq) {
    if (seq > this.seq) this.seq = seq;
  }

  doneCount() {
    const counts = this.counts;
    return TERMINAL.reduce((n, s) => n + (counts[s] || 0), 0);
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
        if (!held || !(d.seq < held.seq)) this.devices.set(d.device_id, { ...held, ...d });
      }
      this.tally = null;
      this.emit();
    } catch {
      // The pushed state stands.
    }
  }

  /** dropConnection drops the socket as a network failure would (used by the tests). */
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

/** tokenLive reports whether the token held has not expired at now. */
function tokenLive(now = Date.now()) {
  const id = identity();
  return !!id && (!id.exp || now < id.exp * 1000);
}
