package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
)

const watchJob = "01jwatch"

func progress(device, status string, seq int64) apiwire.ProgressEvent {
	return apiwire.ProgressEvent{Type: eventProgress, JobID: watchJob, DeviceID: device, Status: status, Seq: seq}
}

func jobDone(seq int64, counts map[string]int) apiwire.ProgressEvent {
	return apiwire.ProgressEvent{Type: eventJobDone, JobID: watchJob, Status: "completed", Seq: seq, Counts: counts}
}

func TestTally(t *testing.T) {
	tests := []struct {
		name   string
		total  int
		events []apiwire.ProgressEvent
		// applied is whether each event applied.
		applied []bool
		want    map[string]int
	}{
		{name: "counts from device states, the rest queued", total: 5,
			events:  []apiwire.ProgressEvent{progress("r1", "running", 10), progress("r2", "succeeded", 20), progress("r1", "failed", 30)},
			applied: []bool{true, true, true},
			want:    map[string]int{"succeeded": 1, "failed": 1, "queued": 3}},
		{name: "duplicates and late arrivals skipped", total: 2,
			events: []apiwire.ProgressEvent{progress("r1", "succeeded", 50), progress("r1", "succeeded", 50),
				progress("r1", "running", 40), progress("r2", "running", 45)},
			applied: []bool{true, false, false, true},
			want:    map[string]int{"succeeded": 1, "running": 1}},
		{name: "gaps mean nothing", total: 2,
			events:  []apiwire.ProgressEvent{progress("r1", "running", 1<<20), progress("r1", "succeeded", 90<<20+3)},
			applied: []bool{true, true},
			want:    map[string]int{"succeeded": 1, "queued": 1}},
		{name: "job_done's counts are final", total: 3,
			events:  []apiwire.ProgressEvent{progress("r1", "running", 10), jobDone(99, map[string]int{"succeeded": 2, "cancelled": 1}), progress("r2", "failed", 100)},
			applied: []bool{true, true, true},
			want:    map[string]int{"succeeded": 2, "cancelled": 1}},
		{name: "a progress event's counts are ignored", total: 2,
			events: []apiwire.ProgressEvent{{Type: eventProgress, DeviceID: "r1", Status: "running", Seq: 1,
				Counts: map[string]int{"succeeded": 2}}},
			applied: []bool{true},
			want:    map[string]int{"running": 1, "queued": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTally(tc.total)
			for i, ev := range tc.events {
				assert.Equal(t, tc.applied[i], tl.event(ev), "event %d applied (%+v)", i, ev)
			}
			assert.Equal(t, tc.want, tl.counts())
		})
	}
}

// eventsAPI is a scripted API of one job: each events page answers a "since|cursor" key (the
// last answer repeats once a key's are used up), and GET /v1/bulk/{id} answers the job, running
// until the events were read doneAfter times.
type eventsAPI struct {
	mu        sync.Mutex
	pages     map[string][]apiwire.EventList
	final     apiwire.Job
	doneAfter int
	// events are the events requests' keys in order; jobReads counts GET /v1/bulk/{id}.
	events   []string
	jobReads int
	// ws, when set, serves /ws.
	ws func(t *testing.T, conn *websocket.Conn)
}

func (f *eventsAPI) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" && f.ws != nil {
			conn, err := websocket.Accept(w, r, nil)
			if !assert.NoError(t, err, "accept /ws") {
				return
			}
			defer conn.CloseNow()
			_, sub, err := conn.Read(r.Context())
			if assert.NoError(t, err, "read subscribe") {
				assert.JSONEq(t, `{"action":"subscribe","job_id":"`+watchJob+`"}`, string(sub))
				f.ws(t, conn)
			}
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		var body any
		switch r.URL.Path {
		case "/v1/bulk/" + watchJob + "/events":
			q := r.URL.Query()
			assert.Equal(t, "1000", q.Get("limit"), "limit")
			key := q.Get("since") + "|" + q.Get("cursor")
			f.events = append(f.events, key)
			answers, ok := f.pages[key]
			if !assert.True(t, ok, "unexpected events request %s", key) {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			body = answers[0]
			if len(answers) > 1 {
				f.pages[key] = answers[1:]
			}
		case "/v1/bulk/" + watchJob:
			f.jobReads++
			j := f.final
			if len(f.events) < f.doneAfter {
				j.Status, j.Counts = "running", nil
			}
			body = j
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		assert.NoError(t, json.NewEncoder(w).Encode(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// watch runs a watcher of watchJob against api (ws: its WebSocket URL, "" to poll).
func watch(t *testing.T, api, ws string, total int) (*watcher, apiwire.Job) {
	t.Helper()
	a := &app{io: IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}}
	w := a.newWatcher(NewClient(api, "t"), watchJob, total, false, nil)
	w.ws = ws
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := w.wait(ctx)
	require.NoError(t, err, "wait")
	return w, j
}

// held is the watcher's devices as "status@seq".
func held(w *watcher) map[string]string {
	out := map[string]string{}
	for id, d := range w.tally.devices {
		out[id] = fmt.Sprintf("%s@%d", d.status, d.seq)
	}
	return out
}

// deviceCounts are the watcher's counts from its devices alone, as they were before the end.
func deviceCounts(w *watcher) map[string]int {
	return (&tally{total: w.tally.total, devices: w.tally.devices}).counts()
}

func TestWatchPolling(t *testing.T) {
	final := map[string]int{"succeeded": 2, "failed": 1}
	many := make([]apiwire.ProgressEvent, eventsPageLimit)
	for i := range many {
		many[i] = progress(fmt.Sprintf("d%04d", i), "running", int64(i+1))
	}
	tests := []struct {
		name  string
		total int
		pages map[string][]apiwire.EventList
		// doneAfter is how many events requests the job is read as running for.
		doneAfter int
		// wantEvents are the events requests' "since|cursor" in order; wantJobReads the job reads.
		wantEvents   []string
		wantJobReads int
		wantHeld     map[string]string
		// wantCounts are the held devices' counts, the rest queued.
		wantCounts map[string]int
	}{
		{name: "pages through next with the same since", total: 4,
			pages: map[string][]apiwire.EventList{
				"0|":   {{Items: []apiwire.ProgressEvent{progress("r1", "running", 10<<20), progress("r2", "succeeded", 20<<20)}, Next: "p2"}},
				"0|p2": {{Items: []apiwire.ProgressEvent{progress("r3", "failed", 15<<20), progress("r1", "succeeded", 30<<20)}}},
				// The window repeats r1; job_done ends the last page.
				fmt.Sprint(30<<20, "|"): {{Items: []apiwire.ProgressEvent{progress("r1", "succeeded", 30<<20), jobDone(40<<20, final)}}},
			},
			doneAfter:    3,
			wantEvents:   []string{"0|", "0|p2", fmt.Sprint(30<<20, "|")},
			wantJobReads: 1,
			wantHeld:     map[string]string{"r1": fmt.Sprint("succeeded@", 30<<20), "r2": fmt.Sprint("succeeded@", 20<<20), "r3": fmt.Sprint("failed@", 15<<20)},
			wantCounts:   map[string]int{"succeeded": 2, "failed": 1, "queued": 1}},
		{name: "held devices coming back are no progress", total: 1,
			pages: map[string][]apiwire.EventList{
				"0|": {{Items: []apiwire.ProgressEvent{progress("r1", "running", 10)}}},
				"10|": {
					{Items: []apiwire.ProgressEvent{progress("r1", "running", 10)}},
					{Items: []apiwire.ProgressEvent{progress("r1", "running", 10), progress("r1", "succeeded", 12), jobDone(13, map[string]int{"succeeded": 1})}},
				},
			},
			doneAfter: 3,
			// Only the first answer applied: the repeat reads the job (still running) before
			// polling again.
			wantEvents:   []string{"0|", "10|", "10|"},
			wantJobReads: 2,
			wantHeld:     map[string]string{"r1": "succeeded@12"},
			wantCounts:   map[string]int{"succeeded": 1}},
		{name: "a full page without next reads on after its last event (contract version 1)", total: eventsPageLimit,
			pages: map[string][]apiwire.EventList{
				"0|":    {{Items: many}},
				"1000|": {{Items: []apiwire.ProgressEvent{progress("d0000", "succeeded", 1001), jobDone(1002, map[string]int{"succeeded": 1000})}}},
			},
			doneAfter:    2,
			wantEvents:   []string{"0|", "1000|"},
			wantJobReads: 1,
			wantHeld: func() map[string]string {
				m := map[string]string{}
				for i := range eventsPageLimit {
					m[fmt.Sprintf("d%04d", i)] = fmt.Sprintf("running@%d", i+1)
				}
				m["d0000"] = "succeeded@1001"
				return m
			}(),
			wantCounts: map[string]int{"running": eventsPageLimit - 1, "succeeded": 1}},
		{name: "a job read as ended ends the watch without job_done", total: 2,
			pages: map[string][]apiwire.EventList{
				"0|": {{Items: []apiwire.ProgressEvent{}}},
			},
			doneAfter:    1,
			wantEvents:   []string{"0|"},
			wantJobReads: 1,
			wantHeld:     map[string]string{},
			wantCounts:   map[string]int{"queued": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &eventsAPI{pages: tc.pages, doneAfter: tc.doneAfter,
				final: apiwire.Job{JobID: watchJob, Status: "completed", DeviceCount: tc.total, Counts: final}}
			w, j := watch(t, f.serve(t), "", tc.total)
			assert.Equal(t, LivePolling, w.live)
			assert.Equal(t, "completed", j.Status, "job")
			f.mu.Lock()
			defer f.mu.Unlock()
			assert.Equal(t, tc.wantEvents, f.events, "events requests")
			assert.Equal(t, tc.wantJobReads, f.jobReads, "job reads")
			assert.Equal(t, tc.wantHeld, held(w), "devices held")
			assert.Equal(t, tc.wantCounts, deviceCounts(w), "counts of the devices held")
			assert.Equal(t, final, w.tally.counts(), "counts once ended: the job's")
		})
	}
}

func TestWatchWebSocket(t *testing.T) {
	final := map[string]int{"succeeded": 2, "failed": 1}
	snapshot1 := `{"type":"snapshot","job_id":"` + watchJob + `","seq":5,"part":1,"parts":2,` +
		`"job":{"job_id":"` + watchJob + `","status":"running","device_count":3,"counts":{"queued":2,"running":1}},` +
		`"devices":[{"device_id":"r1","status":"running","seq":5}]}`
	snapshot2 := `{"type":"snapshot","job_id":"` + watchJob + `","seq":7,"part":2,"parts":2,` +
		`"devices":[{"device_id":"r2","status":"queued","seq":0},{"device_id":"r3","status":"succeeded","seq":7}]}`
	// A burst: r1 finishes, a late copy of its older event, r2 fails; then a progress event
	// that is already held (it was in the snapshot).
	burst := `{"type":"events","job_id":"` + watchJob + `","events":[` +
		`{"type":"bulk_progress","job_id":"` + watchJob + `","device_id":"r1","status":"succeeded","seq":9},` +
		`{"type":"bulk_progress","job_id":"` + watchJob + `","device_id":"r1","status":"running","seq":5},` +
		`{"type":"bulk_progress","job_id":"` + watchJob + `","device_id":"r2","status":"failed","seq":8}]}`
	stale := `{"type":"bulk_progress","job_id":"` + watchJob + `","device_id":"r3","status":"running","seq":6}`
	other := `{"type":"bulk_progress","job_id":"another","device_id":"r3","status":"failed","seq":60}`
	done := `{"type":"job_done","job_id":"` + watchJob + `","status":"completed","seq":10,"counts":{"succeeded":2,"failed":1}}`
	tests := []struct {
		name     string
		messages []string
		// pages answer the events polls (none expected unless the socket fails).
		pages      map[string][]apiwire.EventList
		wantEvents []string
		wantHeld   map[string]string
	}{
		{name: "snapshot and events by the device rule, job_done ends the watch",
			messages: []string{snapshot1, snapshot2, burst, stale, other, done},
			wantHeld: map[string]string{"r1": "succeeded@9", "r2": "failed@8", "r3": "succeeded@7"}},
		{name: "a snapshot of an ended job ends the watch",
			messages: []string{strings.Replace(snapshot1, `"status":"running","device_count"`, `"status":"completed","device_count"`, 1)},
			wantHeld: map[string]string{"r1": "running@5"}},
		{name: "a refused subscription falls back to polling",
			messages: []string{`{"type":"error","code":"forbidden","message":"no"}`},
			pages: map[string][]apiwire.EventList{
				"0|": {{Items: []apiwire.ProgressEvent{progress("r1", "succeeded", 3), jobDone(4, final)}}},
			},
			wantEvents: []string{"0|"},
			wantHeld:   map[string]string{"r1": "succeeded@3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &eventsAPI{pages: tc.pages, final: apiwire.Job{JobID: watchJob, Status: "completed", DeviceCount: 3, Counts: final}}
			if f.pages == nil {
				f.pages = map[string][]apiwire.EventList{}
			}
			f.ws = func(t *testing.T, conn *websocket.Conn) {
				for _, m := range tc.messages {
					if !assert.NoError(t, conn.Write(context.Background(), websocket.MessageText, []byte(m)), "send %s", m) {
						return
					}
				}
				// Hold the socket open until the watcher closes it.
				_, _, _ = conn.Read(context.Background())
			}
			api := f.serve(t)
			w, j := watch(t, api, "ws"+strings.TrimPrefix(api, "http")+"/ws", 0)
			assert.Equal(t, LiveWebSocket, w.live)
			assert.Equal(t, "completed", j.Status, "job")
			assert.Equal(t, final, w.tally.counts(), "counts once ended")
			assert.Equal(t, tc.wantHeld, held(w), "devices held")
			f.mu.Lock()
			defer f.mu.Unlock()
			assert.Equal(t, tc.wantEvents, f.events, "events polls")
		})
	}
}
