package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presente-dispatch/presente/domain/account"
)

// BenchmarkAuthenticatedRequestVsProbe measures what authentication costs
// each API call: GET /api/v1/session (session lookup and touch, the account's
// stream loaded and its email decrypted) against GET /healthz (the same
// HTTP stack, middleware and headers, no database), interleaved in rounds
// at the same concurrency over real HTTP, in one process. It reports the
// median rate of each and the median per-round ratio.
func BenchmarkAuthenticatedRequestVsProbe(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := newEnv(b, envOptions{})
			u := e.users[account.Dispatcher]
			get := func(path string) func() error {
				return func() error {
					req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
					req.Header.Set("Cookie", u.cookie)
					resp, err := e.ts.Client().Do(req)
					if err != nil {
						return err
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("%s: %d", path, resp.StatusCode)
					}
					return nil
				}
			}
			const rounds, round = 7, 1500 * time.Millisecond
			var probe, authed, ratios []float64
			for range rounds {
				p := closedLoopRate(b, workers, round, get("/healthz"))
				a := closedLoopRate(b, workers, round, get("/api/v1/session"))
				probe, authed, ratios = append(probe, p), append(authed, a), append(ratios, a/p)
			}
			b.ReportMetric(median(probe), "probe/s")
			b.ReportMetric(median(authed), "authenticated/s")
			b.ReportMetric(median(ratios), "ratio")
		})
	}
}

// BenchmarkSignIn measures sign-ins per second: each verifies an argon2id
// hash (19 MiB, t=2) and creates a session.
func BenchmarkSignIn(b *testing.B) {
	e := newEnv(b, envOptions{})
	u := e.users[account.Dispatcher]
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, u.email, testPassword)
	signIn := func() error {
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/session", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("sign-in: %d", resp.StatusCode)
		}
		return nil
	}
	b.ReportMetric(closedLoopRate(b, 4, 5*time.Second, signIn), "sign-ins/s")
}

// closedLoopRate runs f in a closed loop on workers goroutines for d and returns
// completions per second.
func closedLoopRate(b *testing.B, workers int, d time.Duration, f func() error) float64 {
	b.Helper()
	var n atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := f(); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
