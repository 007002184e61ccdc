package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// claimAnswers counts how the server answered the claims.
type claimAnswers struct {
	Claimed    int64 `json:"claimed"`
	Waitlisted int64 `json:"waitlisted"`
	// Conflict is a clear 409 (the shift or the volunteer's calendar
	// refused, with a code saying why).
	Conflict int64 `json:"conflict_409"`
	// Other is anything else: a 5xx, a timeout, a lost connection.
	Other int64 `json:"other"`
}

// answered is how many got an answer a volunteer can act on.
func (c claimAnswers) answered() int64 { return c.Claimed + c.Waitlisted + c.Conflict }

// shiftOpensResult is what shift-opens measured.
type shiftOpensResult struct {
	Volunteers int          `json:"volunteers"`
	Slots      int          `json:"slots"`
	Window     string       `json:"window"`
	Rate       float64      `json:"rate"`
	ShiftID    uuid.UUID    `json:"shift_id"`
	Answers    claimAnswers `json:"answers"`
	Latency    summary      `json:"claim_latency"`
	// From the API afterwards, as the coordinator sees the shift.
	APIClaimants int `json:"api_claimants"`
	APIWaiting   int `json:"api_waiting"`
	// Phones: the volunteers' shift boards (live/shifts).
	PhonesFinal      int              `json:"phones_showing_final_counts"`
	PhonesFinalAfter float64          `json:"phones_final_after_last_answer_ms"`
	Ping             summary          `json:"baseline_ping"`
	PG               *baselineResult  `json:"baseline_insert"`
	Gaps             int64            `json:"gaps"`
	Duplicates       int64            `json:"duplicates"`
	Reconnects       int64            `json:"reconnects"`
	Errors           map[string]int64 `json:"errors"`
}

func (r *shiftOpensResult) print(w io.Writer) {
	fmt.Fprintf(w, "shift-opens: %d volunteers claim %d slots within %s (%.0f claims/s, open model)\n", r.Volunteers, r.Slots, r.Window, r.Rate)
	fmt.Fprintf(w, "answers: %d claimed, %d waitlisted, %d clear 409, %d other (no answer a volunteer can act on)\n",
		r.Answers.Claimed, r.Answers.Waitlisted, r.Answers.Conflict, r.Answers.Other)
	fmt.Fprintf(w, "the API afterwards: %d holding a slot, %d waiting\n", r.APIClaimants, r.APIWaiting)
	fmt.Fprintf(w, "phones (live/shifts): %d of %d show the final counts, the last %.0f ms after the last answer\n",
		r.PhonesFinal, r.Volunteers, r.PhonesFinalAfter)
	fmt.Fprintf(w, "  claim latency (from arrival)      %s\n", r.Latency)
	printBaselines(w, "claim", r.Latency.P99, r.Ping, r.PG)
	fmt.Fprintf(w, "LIVE.md rule: %d gaps, %d duplicates; %d reconnects\n", r.Gaps, r.Duplicates, r.Reconnects)
	printErrors(w, r.Errors)
}

func (r *shiftOpensResult) failures() []string {
	var f []string
	if r.Answers.Claimed != int64(r.Slots) || r.APIClaimants != r.Slots {
		f = append(f, fmt.Sprintf("%d claims answered claimed and %d holders in the API, want exactly %d", r.Answers.Claimed, r.APIClaimants, r.Slots))
	}
	if r.Answers.answered() != int64(r.Volunteers) {
		f = append(f, fmt.Sprintf("%d of %d volunteers got an answer they can act on", r.Answers.answered(), r.Volunteers))
	}
	if int64(r.APIWaiting) != r.Answers.Waitlisted {
		f = append(f, fmt.Sprintf("%d answered waitlisted but %d waiting in the API", r.Answers.Waitlisted, r.APIWaiting))
	}
	if r.PhonesFinal != r.Volunteers {
		f = append(f, fmt.Sprintf("%d of %d phones show the shift's final counts", r.PhonesFinal, r.Volunteers))
	}
	if r.Gaps > 0 || r.Duplicates > 0 {
		f = append(f, fmt.Sprintf("%d gaps and %d duplicates in the deltas", r.Gaps, r.Duplicates))
	}
	return f
}

// shiftWatch follows one shift on every phone's shift board: what each
// client last saw of it (claimed + waitlist) and when. Every client reads
// the same deltas, so each is decoded once.
type shiftWatch struct {
	shift uuid.UUID
	mu    sync.Mutex
	seen  map[string]int // taken (claimed + waitlist) by delta position; -1 without the shift
	taken []atomic.Int64
	at    []atomic.Int64
}

func newShiftWatch(shift uuid.UUID, n int) *shiftWatch {
	return &shiftWatch{shift: shift, seen: map[string]int{}, taken: make([]atomic.Int64, n), at: make([]atomic.Int64, n)}
}

// shiftTaken reads how many hold or wait for shift in a shift board
// message (its data.shifts); ok is false when the message does not carry
// the shift.
func shiftTaken(raw []byte, shift uuid.UUID) (taken int, ok bool) {
	var d struct {
		Data struct {
			Shifts []struct {
				ShiftID  uuid.UUID `json:"shift_id"`
				Claimed  int       `json:"claimed"`
				Waitlist int       `json:"waitlist"`
			} `json:"shifts"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return 0, false
	}
	for _, s := range d.Data.Shifts {
		if s.ShiftID == shift {
			return s.Claimed + s.Waitlist, true
		}
	}
	return 0, false
}

func (s *shiftWatch) onDelta(client int, position, raw []byte, t int64) {
	s.mu.Lock()
	taken, ok := s.seen[string(position)]
	if !ok {
		taken = -1
		if n, found := shiftTaken(raw, s.shift); found {
			taken = n
		}
		s.seen[string(position)] = taken
	}
	s.mu.Unlock()
	if taken >= 0 {
		s.taken[client].Store(int64(taken))
		s.at[client].Store(t)
	}
}

// shiftOpens is issue 7's "Saturday shift opens": a coordinator schedules
// a shift of -slots places and -volunteers volunteers, each signed in
// with their own session and watching the shift board on their phone
// (live/shifts), claim it within -duration (an open model: the claims
// are spread evenly). Exactly -slots must be claimed, in the answers and
// in the API afterwards; everyone must be answered (claimed, waitlisted,
// or a clear 409); every phone must come to show the final counts.
func shiftOpens(ctx context.Context, h *harness) (result, error) {
	cfg := h.cfg
	vols, err := h.volunteers(ctx, cfg.Volunteers)
	if err != nil {
		return nil, err
	}
	coord, err := h.coordinator(ctx)
	if err != nil {
		return nil, err
	}
	pg, err := openBaseline(ctx, cfg.BaselineDSN, cfg.BaselineConns)
	if err != nil {
		return nil, err
	}
	defer pg.close()
	rate := float64(len(vols)) / cfg.Duration.Seconds()

	// A shift 7 to 26 days out at 09:00 UTC, a day of its own for each
	// run against the same server (most likely), so the volunteers' other
	// shifts do not overlap it; those that do are answered 409.
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 7+rand.IntN(20)).Add(9 * time.Hour)
	var sh struct {
		ShiftID uuid.UUID `json:"shift_id"`
	}
	if err := h.doAs(ctx, coord, http.MethodPost, "/api/v1/shifts", map[string]any{
		"role": "court watch", "start": start, "end": start.Add(4 * time.Hour), "region": "load-test",
		"place": "Immigration court", "capacity": cfg.Slots,
	}, &sh); err != nil {
		return nil, fmt.Errorf("schedule the shift: %w", err)
	}

	stats := &liveStats{}
	watch := newShiftWatch(sh.ShiftID, len(vols))
	phones, err := h.openClients(ctx, len(vols), "shifts", stats, func(c *liveClient) {
		c.cookie = vols[c.id].Cookie
		c.onDelta = watch.onDelta
	})
	defer closeClients(phones)
	if err != nil {
		return nil, err
	}
	pings := newPinger(phones)

	h.logf("shift-opens: baseline: %d Postgres INSERTs at %.0f/s", len(vols), rate)
	pgRes := pg.run(ctx, h, rate, len(vols), 0)

	var (
		lat        timings
		ans        claimAnswers
		amu        sync.Mutex
		lastAnswer atomic.Int64
	)
	h.logf("shift-opens: %d claims of %d slots in %s", len(vols), cfg.Slots, cfg.Duration)
	h.openLoop(ctx, rate, len(vols), 0, int64(len(vols)), "claim", func(ctx context.Context, a arrival) {
		v := vols[a.i]
		var out struct {
			Claimed  bool `json:"claimed"`
			Position int  `json:"waitlist_position"`
		}
		err := h.doAs(ctx, v.Cookie, http.MethodPost, "/api/v1/shifts/"+sh.ShiftID.String()+"/claims/"+v.UserID.String(), nil, &out)
		at := h.now()
		var api *apiError
		amu.Lock()
		defer amu.Unlock()
		switch {
		case err == nil && out.Claimed:
			ans.Claimed++
		case err == nil && out.Position > 0:
			ans.Waitlisted++
		case errors.As(err, &api) && api.Status == http.StatusConflict:
			ans.Conflict++
			h.errs.add("claim: " + kindOf(err, nil) + " (a clear answer)")
		case err == nil:
			ans.Other++
			h.errs.add("claim: 200 neither claimed nor waitlisted")
		default:
			ans.Other++
			h.errs.add("claim: " + kindOf(err, nil))
			return
		}
		lat.record(a.intended, at-a.intended)
		storeMax(&lastAnswer, at)
	}, pings.ping)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	var st struct {
		Claimants []uuid.UUID `json:"claimants"`
		Waiting   []uuid.UUID `json:"waiting"`
	}
	if err := h.doAs(ctx, coord, http.MethodGet, "/api/v1/shifts/"+sh.ShiftID.String(), nil, &st); err != nil {
		return nil, fmt.Errorf("read the shift back: %w", err)
	}
	final := int64(len(st.Claimants) + len(st.Waiting))

	// Every phone should come to show the final counts.
	phonesFinal := func() (n int, last int64) {
		for i := range phones {
			if watch.taken[i].Load() == final {
				n++
				last = max(last, watch.at[i].Load())
			}
		}
		return n, last
	}
	deadline := time.Now().Add(cfg.Drain)
	n, last := phonesFinal()
	for n < len(phones) && time.Now().Before(deadline) {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
		n, last = phonesFinal()
	}
	amu.Lock()
	defer amu.Unlock()
	return &shiftOpensResult{
		Volunteers: len(vols), Slots: cfg.Slots, Window: cfg.Duration.String(), Rate: rate, ShiftID: sh.ShiftID,
		Answers: ans, Latency: lat.summary(), APIClaimants: len(st.Claimants), APIWaiting: len(st.Waiting),
		PhonesFinal: n, PhonesFinalAfter: ms(last - lastAnswer.Load()),
		Ping: pings.rtt.summary(), PG: pgRes,
		Gaps: stats.gaps.Load(), Duplicates: stats.duplicates.Load(), Reconnects: stats.reconnects.Load(),
		Errors: h.errs.snapshot(),
	}, nil
}
