// Package matching ranks the volunteers who could take a request, the way
// a dispatcher would: on shift or on call now, in the request's region,
// speaking its languages, holding its certifications, least busy first —
// and says, for each, why it matched or did not. When a filter leaves
// nobody, it says how many would match without it, so the dispatcher
// knows what to relax.
//
// It is pure: the caller passes the request, the volunteers' states and
// the time.
package matching

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

// Filters a dispatcher may relax. Being active, free for the request's
// window and holding its required certifications are never relaxed.
const (
	FilterAvailable = "available" // on shift or on call now
	FilterRegion    = "region"
	FilterLanguage  = "language"
)

// Filters lists every filter.
var Filters = []string{FilterAvailable, FilterRegion, FilterLanguage}

// Reason is one criterion and whether the volunteer meets it.
type Reason struct {
	Code   string `json:"code"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// Match is one volunteer who could take the request, with the reasons.
type Match struct {
	VolunteerID uuid.UUID `json:"volunteer_id"`
	Score       int       `json:"score"`
	Load        int       `json:"load"`
	Reasons     []Reason  `json:"reasons"`
}

// Result is the ranked matches, and when there are none, how many
// volunteers each relaxed filter would let through.
type Result struct {
	Matches []Match `json:"matches"`
	// WithoutFilter counts, per filter, the volunteers who would match if
	// that filter alone were dropped; given when Matches is empty.
	WithoutFilter map[string]int `json:"without_filter,omitempty"`
}

// Rank matches the volunteers against the request at now. relaxed names
// filters the dispatcher has dropped.
func Rank(req request.State, vols []volunteer.State, now time.Time, relaxed ...string) Result {
	type scored struct {
		m      Match
		failed []string // filters not met
		hard   bool     // a rule that is never relaxed fails
	}
	var all []scored
	for _, v := range vols {
		if !v.Exists || req.OnTeam(v.VolunteerID) {
			continue
		}
		s := scored{m: Match{VolunteerID: v.VolunteerID, Load: assignments(v, now)}}
		add := func(code string, met bool, detail string) {
			s.m.Reasons = append(s.m.Reasons, Reason{Code: code, Met: met, Detail: detail})
		}

		add("active", v.Active, map[bool]string{true: "active", false: "deactivated"}[v.Active])
		busy := busyDuring(v, req)
		add("free", busy == "", cmp.Or(busy, "free for the whole request"))
		s.hard = !v.Active || busy != ""
		for _, c := range req.Certifications {
			ok := v.Certified(c, req.Window)
			add("certification", ok, certDetail(v, c, ok))
			s.hard = s.hard || !ok
		}

		onShift := onShiftNow(v, now)
		available := onShift || v.OnCall
		add(FilterAvailable, available, availability(onShift, v.OnCall))
		if !available {
			s.failed = append(s.failed, FilterAvailable)
		}
		inRegion := v.InRegion(req.Region)
		add(FilterRegion, inRegion, map[bool]string{true: "serves " + req.Region, false: "does not serve " + req.Region}[inRegion])
		if !inRegion {
			s.failed = append(s.failed, FilterRegion)
		}
		spoken := 0
		for _, lang := range req.Languages {
			level := v.Speaks(lang)
			ok := level.AtLeast(volunteer.Conversational)
			add(FilterLanguage, ok, languageDetail(lang, level))
			if ok {
				spoken++
			}
		}
		if len(req.Languages) > 0 && spoken == 0 {
			s.failed = append(s.failed, FilterLanguage)
		}
		for _, c := range req.TeamCertifications {
			ok := v.Certified(c, req.Window)
			add("team_certification", ok, certDetail(v, c, ok))
			if ok {
				s.m.Score += 2
			}
		}
		if onShift {
			s.m.Score += 5
		} else if v.OnCall {
			s.m.Score += 4
		}
		if inRegion {
			s.m.Score += 3
		}
		s.m.Score += 2*spoken - s.m.Load
		if v.Served == 0 {
			add("experience", false, "has not completed an assignment yet: pair with someone experienced")
		} else {
			add("experience", true, fmt.Sprintf("%d assignments completed", v.Served))
		}
		all = append(all, s)
	}

	passes := func(s scored, drop string) bool {
		if s.hard {
			return false
		}
		for _, f := range s.failed {
			if f != drop && !slices.Contains(relaxed, f) {
				return false
			}
		}
		return true
	}
	var res Result
	for _, s := range all {
		if passes(s, "") {
			res.Matches = append(res.Matches, s.m)
		}
	}
	slices.SortStableFunc(res.Matches, func(a, b Match) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Load, b.Load), slices.Compare(a.VolunteerID[:], b.VolunteerID[:]))
	})
	if len(res.Matches) == 0 {
		res.WithoutFilter = map[string]int{}
		for _, f := range Filters {
			if slices.Contains(relaxed, f) {
				continue
			}
			n := 0
			for _, s := range all {
				if passes(s, f) {
					n++
				}
			}
			res.WithoutFilter[f] = n
		}
	}
	if res.Matches == nil {
		res.Matches = []Match{}
	}
	return res
}

// assignments counts the volunteer's assignments not yet over: their load.
// The shift they are working is not load; it is what makes them available.
func assignments(v volunteer.State, now time.Time) int {
	n := 0
	for _, c := range v.Commitments {
		if c.Kind == volunteer.Assignment && c.Window.End.After(now) {
			n++
		}
	}
	return n
}

// onShiftNow tells whether the volunteer holds a shift slot at now.
func onShiftNow(v volunteer.State, now time.Time) bool {
	for _, c := range v.Commitments {
		if c.Kind == volunteer.ShiftSlot && !now.Before(c.Window.Start) && now.Before(c.Window.End) {
			return true
		}
	}
	return false
}

// busyDuring describes a commitment of v overlapping the request's window,
// or "" when v is free. A shift slot held at the time does not count for a
// rapid-response report: being on shift is what makes them available.
func busyDuring(v volunteer.State, req request.State) string {
	for _, c := range v.Commitments {
		if !c.Window.Overlaps(req.Window) {
			continue
		}
		if c.Kind == volunteer.ShiftSlot && req.Kind == request.RapidResponse {
			continue
		}
		return fmt.Sprintf("holds %s %s from %s", map[volunteer.Kind]string{volunteer.Assignment: "an", volunteer.ShiftSlot: "a"}[c.Kind],
			c.Kind, c.Window.Start.Format(time.RFC3339))
	}
	return ""
}

func availability(onShift, onCall bool) string {
	switch {
	case onShift:
		return "on shift now"
	case onCall:
		return "on call"
	}
	return "neither on shift nor on call"
}

func languageDetail(lang string, level volunteer.Level) string {
	if level == "" {
		return "does not speak " + lang
	}
	return fmt.Sprintf("speaks %s (%s)", lang, level)
}

func certDetail(v volunteer.State, c volunteer.Certification, ok bool) string {
	if ok {
		return "holds " + string(c)
	}
	if until, held := v.CertificationExpiry(c); held && !until.IsZero() {
		return fmt.Sprintf("%s expires %s", c, until.Format(time.DateOnly))
	}
	return "lacks " + string(c)
}
