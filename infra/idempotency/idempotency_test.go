package idempotency_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/testclock"
)

const (
	ttl   = 24 * time.Hour
	lease = 30 * time.Second
	scope = "user:0193a3c4-7d1e-7c55-9f0e-2b8c51a1d001"
)

type fixture struct {
	store  *idempotency.Store
	clock  *testclock.Clock
	pool   *pgxpool.Pool
	master keyring.MasterKey
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	c := testclock.New(time.Date(2026, 11, 23, 6, 40, 0, 0, time.UTC))
	return fixture{
		store:  idempotency.New(pool, master, idempotency.Options{TTL: ttl, Lease: lease, Clock: c.Now}),
		clock:  c,
		pool:   pool,
		master: master,
	}
}

func newMaster(t *testing.T) keyring.MasterKey {
	t.Helper()
	m, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fingerprint stands in for the caller's hash of method, route and body.
func fingerprint(request string) []byte {
	sum := sha256.Sum256([]byte(request))
	return sum[:]
}

// claim calls Begin and fails the test unless it claims the key.
func claim(t *testing.T, s *idempotency.Store, key string, fp []byte) {
	t.Helper()
	resp, err := s.Begin(context.Background(), scope, key, fp)
	if resp != nil || err != nil {
		t.Fatalf("Begin(%s) = %+v, %v; want a claim (nil, nil)", key, resp, err)
	}
}

// complete claims the key and stores resp for it.
func complete(t *testing.T, s *idempotency.Store, key string, fp []byte, resp idempotency.Response) {
	t.Helper()
	claim(t, s, key, fp)
	if err := s.Complete(context.Background(), scope, key, resp); err != nil {
		t.Fatalf("Complete(%s): %v", key, err)
	}
}

// wantReplay calls Begin and fails the test unless it returns want.
func wantReplay(t *testing.T, s *idempotency.Store, key string, fp []byte, want idempotency.Response) {
	t.Helper()
	got, err := s.Begin(context.Background(), scope, key, fp)
	if err != nil || got == nil {
		t.Fatalf("Begin(%s) = %+v, %v; want the stored response", key, got, err)
	}
	if got.Status != want.Status || !reflect.DeepEqual(got.Header, want.Header) || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("Begin(%s) replayed %d %v %q; want %d %v %q", key, got.Status, got.Header, got.Body, want.Status, want.Header, want.Body)
	}
}

func rowCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestARetryOfACompletedRequestReplaysItsResponse(t *testing.T) {
	f := newFixture(t)
	fp := fingerprint("POST /api/requests {\"kind\":\"rapid-response\"}")
	claim(t, f.store, "k-1", fp)
	err := f.store.Complete(context.Background(), scope, "k-1", idempotency.Response{
		Status: http.StatusCreated,
		Header: http.Header{
			"Content-Type": {"application/json"},
			"location":     {"/api/requests/42"}, // not canonical: kept all the same
			"Retry-After":  {"5"},
			"Set-Cookie":   {"session=secret"},
			"X-Request-Id": {"abc"},
			"Date":         {"Mon, 23 Nov 2026 06:40:00 GMT"},
		},
		Body: []byte(`{"id":42}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := idempotency.Response{
		Status: http.StatusCreated,
		Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/api/requests/42"}, "Retry-After": {"5"}},
		Body:   []byte(`{"id":42}`),
	}
	wantReplay(t, f.store, "k-1", fp, want)
	f.clock.Advance(ttl - time.Second) // the lease is long over; the response is kept for the TTL
	wantReplay(t, f.store, "k-1", fp, want)

	// An empty body and no header replay as such.
	complete(t, f.store, "k-2", fp, idempotency.Response{Status: http.StatusNoContent})
	wantReplay(t, f.store, "k-2", fp, idempotency.Response{Status: http.StatusNoContent, Header: http.Header{}})
}

func TestAKeyReusedForAnotherRequestIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, other := fingerprint("POST /api/shifts/7/claim"), fingerprint("POST /api/shifts/8/claim")

	complete(t, f.store, "completed", first, idempotency.Response{Status: http.StatusOK, Body: []byte("ok")})
	if resp, err := f.store.Begin(ctx, scope, "completed", other); !errors.Is(err, idempotency.ErrMismatch) {
		t.Errorf("completed key, other request: Begin = %+v, %v; want ErrMismatch", resp, err)
	}

	claim(t, f.store, "running", first)
	if resp, err := f.store.Begin(ctx, scope, "running", other); !errors.Is(err, idempotency.ErrMismatch) {
		t.Errorf("key in progress, other request: Begin = %+v, %v; want ErrMismatch", resp, err)
	}
	f.clock.Advance(lease) // a claim past its lease is taken over only by the same request
	if resp, err := f.store.Begin(ctx, scope, "running", other); !errors.Is(err, idempotency.ErrMismatch) {
		t.Errorf("key past its lease, other request: Begin = %+v, %v; want ErrMismatch", resp, err)
	}
	// Keys are per scope: the same key in another scope is another key.
	if resp, err := f.store.Begin(ctx, "user:someone-else", "completed", other); resp != nil || err != nil {
		t.Errorf("same key in another scope: Begin = %+v, %v; want a claim", resp, err)
	}
}

func TestARetryWhileTheFirstTryRunsIsToldItIsInProgress(t *testing.T) {
	f := newFixture(t)
	fp := fingerprint("POST /api/assignments/3/arrived")
	claim(t, f.store, "k", fp)
	f.clock.Advance(lease - time.Millisecond)
	if resp, err := f.store.Begin(context.Background(), scope, "k", fp); !errors.Is(err, idempotency.ErrInProgress) {
		t.Errorf("Begin within the lease = %+v, %v; want ErrInProgress", resp, err)
	}
}

func TestAClaimPastItsLeaseIsTakenOverOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fp := fingerprint("POST /api/invitations")
	claim(t, f.store, "k", fp) // its server dies before Complete or Release
	f.clock.Advance(lease)
	claim(t, f.store, "k", fp) // the retry takes the claim over
	f.clock.Advance(lease - time.Millisecond)
	if resp, err := f.store.Begin(ctx, scope, "k", fp); !errors.Is(err, idempotency.ErrInProgress) {
		t.Errorf("Begin within the new lease = %+v, %v; want ErrInProgress", resp, err)
	}
	want := idempotency.Response{Status: http.StatusCreated, Header: http.Header{}, Body: []byte("taken over")}
	if err := f.store.Complete(ctx, scope, "k", want); err != nil {
		t.Fatal(err)
	}
	// A second completion (say, the first server was slow, not dead) does
	// not replace the response retries already see.
	err := f.store.Complete(ctx, scope, "k", idempotency.Response{Status: http.StatusCreated, Body: []byte("late")})
	if !errors.Is(err, idempotency.ErrNotClaimed) {
		t.Errorf("Complete of a completed key: err = %v, want ErrNotClaimed", err)
	}
	wantReplay(t, f.store, "k", fp, want)
}

func TestAReleasedClaimLetsARetryRunButACompletedResponseStays(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fp := fingerprint("POST /api/requests/9/verify")
	claim(t, f.store, "k", fp)
	if err := f.store.Release(ctx, scope, "k"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Release(ctx, scope, "k"); err != nil {
		t.Errorf("releasing twice: %v", err)
	}
	if err := f.store.Complete(ctx, scope, "k", idempotency.Response{Status: http.StatusOK}); !errors.Is(err, idempotency.ErrNotClaimed) {
		t.Errorf("Complete of a released claim: err = %v, want ErrNotClaimed", err)
	}
	claim(t, f.store, "k", fp) // the retry runs, well within the first claim's lease

	want := idempotency.Response{Status: http.StatusOK, Header: http.Header{}, Body: []byte("verified")}
	if err := f.store.Complete(ctx, scope, "k", want); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Release(ctx, scope, "k"); err != nil {
		t.Fatal(err)
	}
	wantReplay(t, f.store, "k", fp, want)
}

// TestOfTwentyConcurrentTriesExactlyOneRuns races real goroutines on real
// Postgres from every state in which a key may be claimed.
func TestOfTwentyConcurrentTriesExactlyOneRuns(t *testing.T) {
	same := func(int) []byte { return fingerprint("POST /api/shifts/7/claim") }
	for _, tc := range []struct {
		name        string
		setup       func(t *testing.T, f fixture)
		fingerprint func(i int) []byte
		othersGet   error
	}{
		{"a new key", func(*testing.T, fixture) {}, same, idempotency.ErrInProgress},
		{"a claim past its lease", func(t *testing.T, f fixture) {
			claim(t, f.store, "k", same(0))
			f.clock.Advance(lease)
		}, same, idempotency.ErrInProgress},
		{"an expired response", func(t *testing.T, f fixture) {
			complete(t, f.store, "k", same(0), idempotency.Response{Status: http.StatusOK})
			f.clock.Advance(ttl)
		}, same, idempotency.ErrInProgress},
		{"a new key sent with twenty different requests", func(*testing.T, fixture) {},
			func(i int) []byte { return fingerprint(fmt.Sprintf("POST /api/shifts/%d/claim", i)) },
			idempotency.ErrMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(t, f)
			const racers = 20
			errs := make([]error, racers)
			resps := make([]*idempotency.Response, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					resps[i], errs[i] = f.store.Begin(context.Background(), scope, "k", tc.fingerprint(i))
				}()
			}
			close(start)
			wg.Wait()
			claims := 0
			for i := range racers {
				switch {
				case resps[i] == nil && errs[i] == nil:
					claims++
				case resps[i] != nil || !errors.Is(errs[i], tc.othersGet):
					t.Errorf("racer %d: Begin = %+v, %v; want a claim or %v", i, resps[i], errs[i], tc.othersGet)
				}
			}
			if claims != 1 {
				t.Errorf("%d racers claimed the key, want exactly 1", claims)
			}
		})
	}
}

func TestExpiredKeysCountAsAbsentAndAreDeleted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fp, other := fingerprint("POST /a"), fingerprint("POST /b")
	resp := idempotency.Response{Status: http.StatusOK, Header: http.Header{}, Body: []byte("done")}

	complete(t, f.store, "old", fp, resp)
	complete(t, f.store, "reused", fp, resp)
	claim(t, f.store, "abandoned", fp) // never completed nor released
	f.clock.Advance(ttl - time.Second)
	complete(t, f.store, "recent", fp, resp)
	if n, err := f.store.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpired before the TTL = %d, %v; want 0", n, err)
	}
	wantReplay(t, f.store, "old", fp, resp)

	f.clock.Advance(time.Second)
	claim(t, f.store, "reused", other) // expired: a new request may use the key, before any cleanup
	if n, err := f.store.DeleteExpired(ctx); err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2 (old and abandoned)", n, err)
	}
	if got := rowCount(t, f.pool); got != 2 {
		t.Errorf("%d rows left, want 2 (recent and reused)", got)
	}
	wantReplay(t, f.store, "recent", fp, resp)
	claim(t, f.store, "old", other)
	claim(t, f.store, "abandoned", fp)
}

func TestTheTableRevealsNeitherTheResponseNorTheKeyNorTheRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const (
		key    = "client-key-0193a3c4-dead-beef"
		secret = "invite-token-Qm9yZGVyIGp1c3RpY2U"
		name   = "Rosa Hernández"
	)
	fp := []byte("POST /api/invitations " + name) // a fingerprint a careless caller did not hash
	resp := idempotency.Response{
		Status: http.StatusCreated,
		Header: http.Header{"Location": {"/invitations/" + secret}},
		Body:   []byte(`{"name":"` + name + `","link":"https://presente.example/join/` + secret + `"}`),
	}
	complete(t, f.store, key, fp, resp)

	var row string
	var keyHash, storedFP, sealed []byte
	if err := f.pool.QueryRow(ctx, `SELECT t::text, key_hash, fingerprint, response FROM idempotency_keys t`).
		Scan(&row, &keyHash, &storedFP, &sealed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row, scope) {
		t.Fatalf("the row %s is not the one stored", row)
	}
	for _, plain := range []string{secret, name, key, string(fp)} {
		for _, enc := range []string{plain, hex.EncodeToString([]byte(plain))} {
			if strings.Contains(row, enc) {
				t.Errorf("the stored row contains %q", enc)
			}
		}
		for col, b := range map[string][]byte{"key_hash": keyHash, "fingerprint": storedFP, "response": sealed} {
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("column %s contains %q", col, plain)
			}
		}
	}
	plainKeyHash := sha256.Sum256([]byte(scope + key))
	if bytes.Equal(keyHash, plainKeyHash[:]) || bytes.Equal(storedFP, fp) {
		t.Errorf("key_hash or fingerprint is stored unkeyed")
	}
	wantReplay(t, f.store, key, fp, resp) // and yet it is all there for a retry
}

func TestAnotherMasterKeyFindsNoStoredResponse(t *testing.T) {
	f := newFixture(t)
	fp := fingerprint("POST /x")
	complete(t, f.store, "a", fp, idempotency.Response{Status: http.StatusOK, Body: []byte("for a")})
	// Under another master key the key hashes to another row: a fresh claim.
	stranger := idempotency.New(f.pool, newMaster(t), idempotency.Options{Clock: f.clock.Now})
	claim(t, stranger, "a", fp)
}

func TestASealedResponseMovedToAnotherRowDoesNotOpen(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fp := fingerprint("POST /x")
	complete(t, f.store, "a", fp, idempotency.Response{Status: http.StatusOK, Body: []byte("for a")})
	complete(t, f.store, "b", fp, idempotency.Response{Status: http.StatusOK, Body: []byte("for b")})

	// Copy one row's sealed response over the other's (which is which is
	// hidden by the keyed hashes, and does not matter).
	var from, to []byte
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT response FROM idempotency_keys ORDER BY key_hash LIMIT 1),
    (SELECT key_hash FROM idempotency_keys ORDER BY key_hash DESC LIMIT 1)`).Scan(&from, &to); err != nil {
		t.Fatal(err)
	}
	if tag, err := f.pool.Exec(ctx, `UPDATE idempotency_keys SET response = $1 WHERE key_hash = $2`, from, to); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("move the sealed response: %v, %v", tag, err)
	}
	opened, refused := 0, 0
	for _, key := range []string{"a", "b"} {
		resp, err := f.store.Begin(ctx, scope, key, fp)
		switch {
		case err == nil && resp != nil && string(resp.Body) == "for "+key:
			opened++
		case err != nil && strings.Contains(err.Error(), "does not open"):
			refused++
		default:
			t.Errorf("Begin(%s) = %+v, %v; want its own response or a response that does not open", key, resp, err)
		}
	}
	if opened != 1 || refused != 1 {
		t.Errorf("%d rows opened and %d were refused, want 1 and 1", opened, refused)
	}
}

func TestAStoreWithoutAMasterKeyRefusesEverything(t *testing.T) {
	pool := pgtest.NewPool(t)
	s := idempotency.New(pool, keyring.MasterKey{}, idempotency.Options{})
	ctx := context.Background()
	if _, err := s.Begin(ctx, scope, "k", fingerprint("x")); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("Begin: err = %v, want a missing master key", err)
	}
	if err := s.Complete(ctx, scope, "k", idempotency.Response{Status: http.StatusOK}); err == nil {
		t.Error("Complete succeeded without a master key")
	}
	if got := rowCount(t, pool); got != 0 {
		t.Errorf("%d rows written without a master key", got)
	}
}

func TestBeginAndCompleteRefuseBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.Begin(ctx, scope, "has space", fingerprint("x")); !errors.Is(err, idempotency.ErrInvalidKey) {
		t.Errorf("Begin with an invalid key: err = %v, want ErrInvalidKey", err)
	}
	if _, err := f.store.Begin(ctx, "", "k", fingerprint("x")); err == nil {
		t.Error("Begin without a scope succeeded")
	}
	if _, err := f.store.Begin(ctx, scope, "k", nil); err == nil {
		t.Error("Begin without a fingerprint succeeded")
	}
	if got := rowCount(t, f.pool); got != 0 {
		t.Errorf("%d rows written for bad input", got)
	}
	claim(t, f.store, "k", fingerprint("x"))
	for _, status := range []int{0, 102, 600} {
		if err := f.store.Complete(ctx, scope, "k", idempotency.Response{Status: status}); err == nil || errors.Is(err, idempotency.ErrNotClaimed) {
			t.Errorf("Complete with status %d: err = %v, want it refused", status, err)
		}
	}
}

func TestDeleteScopeForgetsOneScopeOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fp := fingerprint("POST /x")
	complete(t, f.store, "k", fp, idempotency.Response{Status: http.StatusOK, Header: http.Header{}, Body: []byte("kept")})
	if _, err := f.store.Begin(ctx, "user:forgotten", "k", fp); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.DeleteScope(ctx, f.pool, "user:forgotten"); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, f.pool); got != 1 {
		t.Errorf("%d rows left, want 1", got)
	}
	wantReplay(t, f.store, "k", fp, idempotency.Response{Status: http.StatusOK, Header: http.Header{}, Body: []byte("kept")})
}

func TestTheApplicationRoleMayUseTheTable(t *testing.T) {
	pool := pgtest.NewPool(t)
	for _, privilege := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
		var ok bool
		if err := pool.QueryRow(context.Background(), `SELECT has_table_privilege('presente_app', 'idempotency_keys', $1)`,
			privilege).Scan(&ok); err != nil || !ok {
			t.Errorf("presente_app lacks %s on idempotency_keys (%v)", privilege, err)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		fix       string // part of the advice; empty for a valid key
	}{
		{"a UUID is valid", "8e03978e-40d5-43e8-bc93-6894a57f9324", ""},
		{"one character is valid", "x", ""},
		{"every visible ASCII character is valid", "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", ""},
		{"255 characters are valid", strings.Repeat("k", 255), ""},
		{"an empty key is refused", "", "it is empty"},
		{"256 characters are refused", strings.Repeat("k", 256), "256 bytes long"},
		{"a space is refused", "two words", "character 4 is a space"},
		{"a control character is refused", "key\n", "character 4 is a space, a control character"},
		{"DEL is refused", "key\x7f", "character 4"},
		{"a non-ASCII letter is refused", "clé", "not ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := idempotency.ValidateKey(tc.key)
			switch {
			case tc.fix == "" && err != nil:
				t.Errorf("ValidateKey = %v, want nil", err)
			case tc.fix != "" && (!errors.Is(err, idempotency.ErrInvalidKey) || !strings.Contains(err.Error(), tc.fix) ||
				!strings.Contains(err.Error(), "1 to 255 visible ASCII characters")):
				t.Errorf("ValidateKey = %v, want ErrInvalidKey saying %q and what to send", err, tc.fix)
			}
		})
	}
}
