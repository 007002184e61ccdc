package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// demoNamespace derives the demo organization's ids from names, so seeding
// again finds what it made.
var demoNamespace = uuid.MustParse("4d2a9e6c-1f7b-4c38-a5e0-8b3d6f1c2e97")

func demoID(name string) uuid.UUID { return uuid.NewSHA1(demoNamespace, []byte(name)) }

// demoMeta is the metadata of everything the demo seeds.
var demoMeta = eventstore.Metadata{Actor: "system:demo"}

// demoCourses is the demo catalog: what networks in the field teach.
var demoCourses = []struct {
	name   string
	cert   volunteer.Certification
	months int
}{
	{"Know your rights", "know_your_rights", 0},
	{"Court accompaniment", "court_accompaniment", 24},
	{"ICE check-in accompaniment", "checkin_accompaniment", 24},
	{"Rapid response and legal observing", "rapid_response", 12},
	{"De-escalation", "de_escalation", 24},
	{"Interpreting", "interpreting", 36},
}

// demoVolunteer describes one demo volunteer compactly.
type demoVolunteer struct {
	name    string
	langs   string // "es:native en:fluent"
	regions []string
	certs   []volunteer.Certification
	onCall  bool
	prior   int
}

var demoVolunteers = func() []demoVolunteer {
	first := []string{"Marisol", "Joaquín", "Ana Lucía", "Tomás", "Guadalupe", "Wilner", "Mai", "Samir", "Rosa", "Diego", "Nadia", "Ernesto",
		"Chantal", "Pedro", "Linh", "Yasmin", "Carmen", "Luis", "Fabiola", "Héctor", "Wei", "Beatriz", "Julio", "Marta",
		"Kiara", "Andrés", "Sofía", "Rigoberto", "Esperanza", "Miguel", "Thao", "Ahmed", "Valeria", "Francisco", "Lucía", "Jean"}
	langs := []string{"es:native en:fluent", "es:native mam:fluent", "es:fluent en:native", "ht:native en:fluent fr:fluent",
		"vi:native en:conversational", "ar:native en:fluent", "quc:native es:fluent", "zh:native en:fluent", "es:conversational en:native"}
	regions := [][]string{{"East"}, {"West"}, {"North"}, {"South"}, {"Downtown"}, {"East", "Downtown"}, {"West", "South"}}
	certs := [][]volunteer.Certification{
		{"know_your_rights", "rapid_response"},
		{"know_your_rights", "court_accompaniment", "checkin_accompaniment"},
		{"know_your_rights", "rapid_response", "de_escalation"},
		{"know_your_rights", "interpreting", "court_accompaniment"},
		{"know_your_rights"},
		{"know_your_rights", "checkin_accompaniment"},
	}
	var out []demoVolunteer
	for i, name := range first {
		out = append(out, demoVolunteer{name: name, langs: langs[i%len(langs)], regions: regions[i%len(regions)],
			certs: certs[i%len(certs)], onCall: i%3 == 0, prior: (i * 7) % 13})
	}
	return out
}()

func parseLanguages(s string) []volunteer.Language {
	var out []volunteer.Language
	for _, part := range strings.Fields(s) {
		code, level, _ := strings.Cut(part, ":")
		out = append(out, volunteer.Language{Code: code, Level: volunteer.Level(level)})
	}
	return out
}

// seedDemoOrganization loads a realistic network through the same commands
// the API runs: a catalog of courses and upcoming sessions, three dozen
// volunteers with languages, regions and certifications (some expiring),
// a week of shifts, and open and closed requests. The volunteer demo
// account gets a volunteer record of its own. It does nothing when the
// organization is already there, and finishes a run that was stopped half
// way: every record has a fixed id, and one that exists is left as it is.
func seedDemoOrganization(ctx context.Context, d *dispatch.Service, volunteerAccount uuid.UUID, now time.Time) (bool, error) {
	lastOpen := demoID(fmt.Sprintf("open request %d", demoOpenRequests-1))
	if _, err := d.RequestState(ctx, lastOpen); err == nil {
		return false, nil // seeded before: the last record seeded is there
	}
	day := now.UTC().Truncate(24 * time.Hour)

	for _, c := range demoCourses {
		id := demoID("course " + c.name)
		if err := d.Course(ctx, demoMeta, id, training.AddCourse{CourseID: id, Name: c.name, Certification: c.cert, ValidityMonths: c.months}); existed(err, training.ErrCourseExists) != nil {
			return false, fmt.Errorf("course %s: %w", c.name, err)
		}
	}
	for i, c := range demoCourses[:3] {
		start := day.AddDate(0, 0, 2+2*i).Add(17 * time.Hour)
		if err := d.ScheduleSession(ctx, demoMeta, training.ScheduleSession{SessionID: demoID("session " + c.name), Window: domain.Window{Start: start, End: start.Add(3 * time.Hour)},
			Place: "Community center, room 2", Capacity: 20}, demoID("course "+c.name)); existed(err, training.ErrSessionExists) != nil {
			return false, fmt.Errorf("session %s: %w", c.name, err)
		}
	}

	register := func(id, user uuid.UUID, v demoVolunteer, n int) error {
		if err := d.RegisterVolunteer(ctx, demoMeta, volunteer.Register{VolunteerID: id, UserID: user, Name: v.name,
			Phone: fmt.Sprintf("+1 555 01%02d", n), Languages: parseLanguages(v.langs), Regions: v.regions, PriorAssignments: v.prior}); err != nil {
			// Registered by a run that stopped half way: its
			// certifications are granted again, which renews them.
			if !errors.Is(err, volunteer.ErrAlreadyRegistered) {
				return fmt.Errorf("volunteer %s: %w", v.name, err)
			}
		}
		for j, c := range v.certs {
			expires := time.Time{}
			if c != "know_your_rights" {
				// A few certifications run out within the month, for the
				// expiry report.
				expires = day.AddDate(1, 0, 0)
				if (n+j)%9 == 0 {
					expires = day.AddDate(0, 0, 20)
				}
			}
			if err := d.Volunteer(ctx, demoMeta, id, volunteer.Grant{Certification: c, GrantedAt: day.AddDate(-1, 0, 0), ExpiresAt: expires}); err != nil {
				return fmt.Errorf("volunteer %s: %w", v.name, err)
			}
		}
		if v.onCall {
			if err := d.Volunteer(ctx, demoMeta, id, volunteer.SetOnCall{OnCall: true}); err != nil {
				return fmt.Errorf("volunteer %s: %w", v.name, err)
			}
		}
		return nil
	}
	var vols []uuid.UUID
	for i, v := range demoVolunteers {
		id := demoID("volunteer " + v.name)
		if err := register(id, uuid.Nil, v, i); err != nil {
			return false, err
		}
		vols = append(vols, id)
	}
	if err := register(volunteerAccount, volunteerAccount, demoVolunteer{name: "Demo Volunteer", langs: "es:fluent en:native",
		regions: []string{"East"}, certs: []volunteer.Certification{"know_your_rights", "rapid_response", "court_accompaniment"}, onCall: true, prior: 2},
		len(demoVolunteers)); err != nil {
		return false, err
	}

	// A week of shifts.
	for i := range 7 {
		date := day.AddDate(0, 0, i)
		shifts := []shift.Schedule{
			{Role: "hotline", Window: domain.Window{Start: date.Add(13 * time.Hour), End: date.Add(21 * time.Hour)}, Region: "Downtown", Place: "Hotline office", Capacity: 2},
			{Role: "on-call rapid response", Window: domain.Window{Start: date.Add(11 * time.Hour), End: date.Add(23 * time.Hour)}, Region: "East", Capacity: 4,
				Requires: []volunteer.Certification{"rapid_response"}},
		}
		if date.Weekday() == time.Tuesday || date.Weekday() == time.Thursday {
			shifts = append(shifts, shift.Schedule{Role: "court watch", Window: domain.Window{Start: date.Add(14 * time.Hour), End: date.Add(18 * time.Hour)},
				Region: "Downtown", Place: "Immigration court, 5th floor", Capacity: 3, Requires: []volunteer.Certification{"court_accompaniment"}})
		}
		for j, s := range shifts {
			s.ShiftID = demoID(fmt.Sprintf("shift %d %d", i, j))
			if err := d.ScheduleShift(ctx, demoMeta, s); existed(err, shift.ErrExists) != nil {
				return false, fmt.Errorf("shift %s: %w", s.Role, err)
			}
		}
	}
	// Claims on tomorrow's hotline and today's court watch, where they fit.
	for k, v := range vols[:6] {
		if _, err := d.ClaimShift(ctx, demoMeta, demoID(fmt.Sprintf("shift %d 0", 1+k%2)), v); err != nil {
			continue // not eligible for this one: the demo moves on
		}
	}

	// Two requests from last week, done and closed; three open ones.
	for i, sub := range []string{"court_hearing", "ice_checkin"} {
		start := day.AddDate(0, 0, -6+i).Add(15 * time.Hour)
		id := demoID("closed request " + sub)
		if _, err := d.RequestState(ctx, id); err == nil {
			continue // received by a run that stopped half way
		}
		if err := d.ReceiveRequest(ctx, demoMeta, request.Receive{RequestID: id, Kind: request.Accompaniment, SubKind: sub,
			Window: domain.Window{Start: start, End: start.Add(2 * time.Hour)}, Region: "Downtown", Languages: []string{"es"}, Needed: 1,
			Priority: request.Normal, PersonID: demoID("person " + sub), PersonName: "Demo Person " + sub, PersonPhone: "+1 555 0190",
			MeetingPoint: "Front steps"}); err != nil {
			return false, fmt.Errorf("request: %w", err)
		}
		a, err := d.Offer(ctx, demoMeta, id, vols[[]int{2, 9}[i]], false) // experienced Spanish speakers
		if err != nil {
			return false, fmt.Errorf("demo assignment: %w", err)
		}
		for _, to := range []request.AssignmentStatus{request.Accepted, request.EnRoute, request.Arrived, request.Done} {
			if err := d.ChangeAssignment(ctx, demoMeta, id, a, to); err != nil {
				return false, fmt.Errorf("demo assignment: %w", err)
			}
		}
		for _, c := range []request.Command{request.Resolve{Outcome: "accompanied", At: start.Add(2 * time.Hour)}, request.Close{At: start.Add(3 * time.Hour)}} {
			if err := d.Request(ctx, demoMeta, id, c); err != nil {
				return false, fmt.Errorf("demo request: %w", err)
			}
		}
	}
	open := []request.Receive{
		{Kind: request.Accompaniment, SubKind: "ice_checkin", Window: domain.Window{Start: day.AddDate(0, 0, 1).Add(14 * time.Hour), End: day.AddDate(0, 0, 1).Add(16 * time.Hour)},
			Region: "East", Languages: []string{"es"}, Certifications: []volunteer.Certification{"checkin_accompaniment"}, Needed: 1, Priority: request.High,
			PersonName: "Demo Person check-in", PersonPhone: "+1 555 0191", MeetingPoint: "Field office lobby"},
		{Kind: request.Accompaniment, SubKind: "court_hearing", Window: domain.Window{Start: day.AddDate(0, 0, 3).Add(15 * time.Hour), End: day.AddDate(0, 0, 3).Add(18 * time.Hour)},
			Region: "Downtown", Languages: []string{"mam"}, TeamCertifications: []volunteer.Certification{"interpreting"}, Needed: 2, Priority: request.Normal,
			PersonName: "Demo Person hearing", PersonPhone: "+1 555 0192", MeetingPoint: "Immigration court, 5th floor"},
		{Kind: request.RapidResponse, Window: domain.Window{Start: now, End: now.Add(4 * time.Hour)}, Region: "East", Languages: []string{"es"},
			Certifications: []volunteer.Certification{"rapid_response"}, Needed: 2, Priority: request.Urgent,
			PersonName: "Demo hotline caller", PersonPhone: "+1 555 0193", MeetingPoint: "Warehouse loading dock, east side"},
	}
	if len(open) != demoOpenRequests {
		return false, fmt.Errorf("demo: %d open requests, but demoOpenRequests says %d", len(open), demoOpenRequests)
	}
	for i, r := range open {
		r.RequestID, r.PersonID = demoID(fmt.Sprintf("open request %d", i)), demoID(fmt.Sprintf("open person %d", i))
		if err := d.ReceiveRequest(ctx, demoMeta, r); existed(err, request.ErrExists) != nil {
			return false, fmt.Errorf("open request: %w", err)
		}
	}
	return true, nil
}

// demoOpenRequests is how many open requests the demo has; the last one
// received marks the organization as seeded.
const demoOpenRequests = 3

// existed is err, unless it says the record was already there (seeded by
// a run that stopped half way).
func existed(err, already error) error {
	if errors.Is(err, already) {
		return nil
	}
	return err
}
