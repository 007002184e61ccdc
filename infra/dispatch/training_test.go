package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/training"
)

func TestAnAttendeeIsCertifiedAndMayThenClaimWorkThatNeedsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	course, session := uuid.New(), uuid.New()
	if err := f.svc.Course(ctx, meta, course, training.AddCourse{CourseID: course, Name: "Court accompaniment",
		Certification: "court_accompaniment", ValidityMonths: 24}); err != nil {
		t.Fatal(err)
	}
	class := domain.Window{Start: monday.Add(2 * time.Hour), End: monday.Add(5 * time.Hour)}
	if err := f.svc.ScheduleSession(ctx, meta, training.ScheduleSession{SessionID: session, Window: class, Place: "Community center", Capacity: 10}, course); err != nil {
		t.Fatal(err)
	}
	v := f.volunteer(t)
	if err := f.svc.Session(ctx, meta, session, training.Enroll{VolunteerID: v}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Hour)
	if err := f.svc.Session(ctx, meta, session, training.RecordAttendance{VolunteerID: v, Attended: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.IssueCertification(ctx, meta, session, v); err != nil {
		t.Fatal(err)
	}
	sh := f.shift(t, 1, thursday, "court_accompaniment")
	if c, err := f.svc.ClaimShift(ctx, meta, sh, v); err != nil || !c.Claimed {
		t.Errorf("a claim needing the new certification: %+v, %v", c, err)
	}
}
