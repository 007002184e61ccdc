package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
)

// volunteerSession is a volunteer account the load made, signed in.
type volunteerSession struct {
	Email  string    `json:"email"`
	UserID uuid.UUID `json:"user_id"`
	Cookie string    `json:"cookie"`
}

// volunteerFile keeps the sessions between runs against the same server,
// so a second scenario does not pay for them again (-volunteer-file).
type volunteerFile struct {
	Server     string             `json:"server"`
	Volunteers []volunteerSession `json:"volunteers"`
}

// setupConcurrency bounds the volunteers being made at once. Each costs
// the server two argon2id hashes (setting the password, signing in) of
// about 40 ms of a core; sign-ins in flight from one address count
// against the throttle's burst of 20 (web/throttle.go), so staying well
// under it never trips the throttle, which counts only failures.
const setupConcurrency = 6

// volunteers returns n signed-in volunteer accounts, each with its
// volunteer record, made the way an organization makes them: the
// coordinator invites (POST /api/v1/invitations), the invitee sets a
// password (POST /api/v1/invitations/accept), the coordinator registers
// the volunteer record linked to the account with experience from before
// Presente (POST /api/v1/volunteers, prior_assignments, so the rule
// "first assignment not alone" does not refuse them), and the volunteer
// signs in once (POST /api/v1/session); the session is then reused for
// everything. Sessions from -volunteer-file are reused when the server
// still accepts them.
func (h *harness) volunteers(ctx context.Context, n int) ([]volunteerSession, error) {
	var kept []volunteerSession
	if h.cfg.VolunteerFile != "" {
		var err error
		if kept, err = h.loadVolunteers(ctx); err != nil {
			return nil, err
		}
	}
	if len(kept) >= n {
		h.logf("volunteers: reusing %d sessions from %s", n, h.cfg.VolunteerFile)
		return kept[:n], nil
	}
	coordinator, err := h.coordinator(ctx)
	if err != nil {
		return nil, fmt.Errorf("volunteers are invited by a coordinator: %w", err)
	}
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	tag := hex.EncodeToString(run)
	todo := n - len(kept)
	made := make([]volunteerSession, todo)
	began := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		count    int
	)
	sem := make(chan struct{}, setupConcurrency)
	for i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mu.Lock()
			failed := firstErr != nil
			mu.Unlock()
			if failed || ctx.Err() != nil {
				return
			}
			v, err := h.makeVolunteer(ctx, coordinator, fmt.Sprintf("load-%s-%d@load.example.org", tag, len(kept)+i), len(kept)+i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			made[i] = v
			count++
			if count%200 == 0 {
				h.logf("volunteers: %d of %d made", count, todo)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("make volunteers: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.logf("volunteers: %d made in %s (%.1f/s)", todo, time.Since(began).Round(10*time.Millisecond),
		float64(todo)/time.Since(began).Seconds())
	all := append(kept, made...)
	if h.cfg.VolunteerFile != "" {
		b, _ := json.MarshalIndent(volunteerFile{Server: h.origin, Volunteers: all}, "", " ")
		if err := os.WriteFile(h.cfg.VolunteerFile, b, 0o600); err != nil {
			return nil, fmt.Errorf("-volunteer-file: %w", err)
		}
	}
	return all, nil
}

// coordinator signs in as -coordinator-email, once, and returns the
// session's cookie.
func (h *harness) coordinator(ctx context.Context) (string, error) {
	h.coordMu.Lock()
	defer h.coordMu.Unlock()
	if h.coordCookie == "" {
		c, err := h.signInAs(ctx, h.cfg.CoordinatorEmail, h.cfg.password)
		if err != nil {
			return "", err
		}
		h.coordCookie = c
	}
	return h.coordCookie, nil
}

// loadVolunteers reads -volunteer-file; sessions for another server, or
// that the server no longer accepts (a new database, expired), are
// dropped.
func (h *harness) loadVolunteers(ctx context.Context) ([]volunteerSession, error) {
	b, err := os.ReadFile(h.cfg.VolunteerFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("-volunteer-file: %w", err)
	}
	var f volunteerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("-volunteer-file %s: %w", h.cfg.VolunteerFile, err)
	}
	if f.Server != h.origin || len(f.Volunteers) == 0 {
		return nil, nil
	}
	// One session checked at each end stands for the rest: they were made
	// together, on one database.
	for _, v := range []volunteerSession{f.Volunteers[0], f.Volunteers[len(f.Volunteers)-1]} {
		var who struct {
			UserID uuid.UUID `json:"user_id"`
		}
		if err := h.doAs(ctx, v.Cookie, http.MethodGet, "/api/v1/session", nil, &who); err != nil || who.UserID != v.UserID {
			h.logf("volunteers: the sessions in %s are no longer valid on this server (%v); making new ones", h.cfg.VolunteerFile, err)
			return nil, nil
		}
	}
	return f.Volunteers, nil
}

// makeVolunteer makes one volunteer through the API (see volunteers).
func (h *harness) makeVolunteer(ctx context.Context, coordinator, email string, n int) (volunteerSession, error) {
	var inv struct {
		Link string `json:"link"`
	}
	if err := h.doAs(ctx, coordinator, http.MethodPost, "/api/v1/invitations",
		map[string]any{"email": email, "role": "volunteer"}, &inv); err != nil {
		return volunteerSession{}, fmt.Errorf("invite: %w", err)
	}
	token, err := invitationToken(inv.Link)
	if err != nil {
		return volunteerSession{}, err
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	password := "load-" + hex.EncodeToString(pw)
	var acc struct {
		UserID uuid.UUID `json:"user_id"`
	}
	if err := h.doAs(ctx, "", http.MethodPost, "/api/v1/invitations/accept",
		map[string]string{"token": token, "password": password}, &acc); err != nil {
		return volunteerSession{}, fmt.Errorf("accept the invitation: %w", err)
	}
	if err := h.doAs(ctx, coordinator, http.MethodPost, "/api/v1/volunteers", map[string]any{
		"user_id": acc.UserID, "name": fmt.Sprintf("Load Volunteer %d", n), "email": email,
		"languages":         []map[string]string{{"code": "es", "level": "fluent"}, {"code": "en", "level": "fluent"}},
		"regions":           []string{"load-test"},
		"prior_assignments": 3,
	}, nil); err != nil {
		return volunteerSession{}, fmt.Errorf("register the volunteer: %w", err)
	}
	cookie, err := h.signInAs(ctx, email, password)
	if err != nil {
		return volunteerSession{}, err
	}
	return volunteerSession{Email: email, UserID: acc.UserID, Cookie: cookie}, nil
}

// invitationToken reads the token from an invitation link, which carries
// it in its fragment (…/join#<token>) so it never reaches a server log.
func invitationToken(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil || u.Fragment == "" {
		return "", fmt.Errorf("the invitation's link %q carries no token in its fragment", link)
	}
	return u.Fragment, nil
}
