package training_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/domaintest"
	"github.com/presente-dispatch/presente/domain/training"
)

var (
	courseID  = uuid.MustParse("0195a3b2-0000-7000-8000-0000000f0001")
	sessionID = uuid.MustParse("0195a3b2-0000-7000-8000-0000000f0002")
	ana       = uuid.MustParse("0195a3b2-0000-7000-8000-0000000f00a1")
	beto      = uuid.MustParse("0195a3b2-0000-7000-8000-0000000f00b2")
	saturday  = domain.Window{Start: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)}
	monday    = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	added     = training.CourseAdded{CourseID: courseID, Name: "Court accompaniment", Certification: "court_accompaniment", ValidityMonths: 24}
	course    = training.CourseDecider.Fold([]domain.Event{added})
	scheduled = training.SessionScheduled{SessionID: sessionID, CourseID: courseID, Certification: "court_accompaniment", ValidityMonths: 24,
		Window: saturday, Place: "Community center", Capacity: 1}
)

func TestCourseRules(t *testing.T) {
	var invalid *training.InvalidError
	tests := []struct {
		name    string
		given   []domain.Event
		when    training.CourseCommand
		then    []domain.Event
		wantErr error
		wantAs  any
	}{
		{name: "a course names the certification it grants and for how long",
			when: training.AddCourse{CourseID: courseID, Name: " Court accompaniment ", Certification: "court_accompaniment", ValidityMonths: 24},
			then: []domain.Event{added}},
		{name: "a certification name is a code",
			when: training.AddCourse{CourseID: courseID, Name: "Court", Certification: "Court Accompaniment"}, wantAs: &invalid},
		{name: "validity is bounded",
			when: training.AddCourse{CourseID: courseID, Name: "Court", Certification: "court", ValidityMonths: 500}, wantAs: &invalid},
		{name: "a course is renamed or its validity changed",
			given: []domain.Event{added}, when: training.ChangeCourse{Name: "Court accompaniment II", ValidityMonths: 12},
			then: []domain.Event{training.CourseChanged{CourseID: courseID, Name: "Court accompaniment II", ValidityMonths: 12}}},
		{name: "a course is retired from the catalog",
			given: []domain.Event{added}, when: training.RetireCourse{}, then: []domain.Event{training.CourseRetired{CourseID: courseID}}},
		{name: "a retired course accepts no changes",
			given: []domain.Event{added, training.CourseRetired{CourseID: courseID}}, when: training.ChangeCourse{Name: "x"},
			wantErr: training.ErrCourseRetired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := training.CourseDecider.Decide(training.CourseDecider.Fold(tt.given), tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
		})
	}
}

func TestSessionRules(t *testing.T) {
	var invalid *training.InvalidError
	enrolled := training.Enrolled{SessionID: sessionID, VolunteerID: ana}
	attended := training.AttendanceRecorded{SessionID: sessionID, VolunteerID: ana, Attended: true}
	tests := []struct {
		name    string
		given   []domain.Event
		when    training.SessionCommand
		then    []domain.Event
		wantErr error
		wantAs  any
	}{
		{name: "a session copies its course's certification and validity",
			when: training.ScheduleSession{SessionID: sessionID, Course: course, Window: saturday, Place: "Community center", Capacity: 1},
			then: []domain.Event{scheduled}},
		{name: "a session of a retired course cannot be scheduled",
			when: training.ScheduleSession{SessionID: sessionID, Course: training.CourseDecider.Fold([]domain.Event{added, training.CourseRetired{CourseID: courseID}}),
				Window: saturday, Place: "x", Capacity: 1}, wantErr: training.ErrCourseRetired},
		{name: "a session needs a seat",
			when: training.ScheduleSession{SessionID: sessionID, Course: course, Window: saturday, Place: "x"}, wantAs: &invalid},
		{name: "a session lasting more than a day is refused",
			when: training.ScheduleSession{SessionID: sessionID, Course: course, Window: domain.Window{Start: saturday.Start, End: saturday.Start.AddDate(0, 0, 2)},
				Place: "x", Capacity: 1}, wantAs: &invalid},
		{name: "a volunteer enrolls in a seat",
			given: []domain.Event{scheduled}, when: training.Enroll{VolunteerID: ana, Now: monday}, then: []domain.Event{enrolled}},
		{name: "a full session enrolls nobody more",
			given: []domain.Event{scheduled, enrolled}, when: training.Enroll{VolunteerID: beto, Now: monday}, wantErr: training.ErrSessionFull},
		{name: "enrollment closes when the session starts",
			given: []domain.Event{scheduled}, when: training.Enroll{VolunteerID: ana, Now: saturday.Start}, wantErr: training.ErrSessionStarted},
		{name: "attendance is recorded only once the session has started",
			given: []domain.Event{scheduled, enrolled}, when: training.RecordAttendance{VolunteerID: ana, Attended: true, Now: monday},
			wantErr: training.ErrNotYetHeld},
		{name: "attendance of an enrolled volunteer is recorded",
			given: []domain.Event{scheduled, enrolled}, when: training.RecordAttendance{VolunteerID: ana, Attended: true, Now: saturday.End},
			then: []domain.Event{attended}},
		{name: "only attendees are certified",
			given: []domain.Event{scheduled, enrolled}, when: training.IssueCertification{VolunteerID: ana}, wantErr: training.ErrNotAttended},
		{name: "an attendee is certified from the session's end for the course's validity",
			given: []domain.Event{scheduled, enrolled, attended}, when: training.IssueCertification{VolunteerID: ana},
			then: []domain.Event{training.CertificationIssued{SessionID: sessionID, VolunteerID: ana, GrantedAt: saturday.End, ExpiresAt: saturday.End.AddDate(2, 0, 0)}}},
		{name: "a certification is issued once per session",
			given: []domain.Event{scheduled, enrolled, attended, training.CertificationIssued{SessionID: sessionID, VolunteerID: ana}},
			when:  training.IssueCertification{VolunteerID: ana}, wantErr: training.ErrAlreadyIssued},
		{name: "a volunteer gives their seat back before the session starts",
			given: []domain.Event{scheduled, enrolled}, when: training.Unenroll{VolunteerID: ana, Now: monday},
			then: []domain.Event{training.Unenrolled{SessionID: sessionID, VolunteerID: ana}}},
		{name: "a seat is not given back once the session has started",
			given: []domain.Event{scheduled, enrolled}, when: training.Unenroll{VolunteerID: ana, Now: saturday.Start},
			wantErr: training.ErrSessionStarted},
		{name: "only an enrolled volunteer gives a seat back",
			given: []domain.Event{scheduled}, when: training.Unenroll{VolunteerID: ana, Now: monday}, wantErr: training.ErrNotEnrolled},
		{name: "a cancelled session accepts nothing more",
			given: []domain.Event{scheduled, training.SessionCancelled{SessionID: sessionID}}, when: training.Enroll{VolunteerID: ana, Now: monday},
			wantErr: training.ErrSessionCancelled},
		{name: "a session is cancelled with a reason",
			given: []domain.Event{scheduled}, when: training.CancelSession{}, wantErr: training.ErrReasonRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := training.SessionDecider.Decide(training.SessionDecider.Fold(tt.given), tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
		})
	}
}
