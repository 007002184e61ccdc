package web

import (
	"crypto/sha256"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottleOptions bound failed sign-ins. Each limit is a token bucket: a
// burst of failures is allowed, then one more per interval.
type ThrottleOptions struct {
	// AccountBurst failures per account before waiting (5 when zero), then
	// one per AccountEvery (1 minute when zero).
	AccountBurst int
	AccountEvery time.Duration
	// AddressBurst failures per client address (20 when zero), then one per
	// AddressEvery (10 seconds when zero). An office behind one address
	// signs in far below this; a password sprayer does not.
	AddressBurst int
	AddressEvery time.Duration
	// Clock gives the time; time.Now when nil.
	Clock func() time.Time
}

// throttle counts failed sign-ins per account and per client address.
// It is in memory, per instance: several instances each allow the limit,
// which still bounds guessing to a handful per minute per account.
type throttle struct {
	mu        sync.Mutex
	opts      ThrottleOptions
	accounts  map[[32]byte]*bucket
	addresses map[netip.Prefix]*bucket
	lastSweep time.Time
}

// bucket is one account's or address's failures: a token bucket that each
// failure drains, and the attempts still being checked, which count
// against it until they end, so that concurrent guesses cannot all pass
// the check before any of them has failed.
type bucket struct {
	lim      *rate.Limiter
	inflight int
}

// wait is how long until the bucket has a token for one more attempt.
func (b *bucket) wait(now time.Time) time.Duration {
	free := b.lim.TokensAt(now) - float64(b.inflight)
	if free >= 1 {
		return 0
	}
	return time.Duration((1 - free) / float64(b.lim.Limit()) * float64(time.Second))
}

// idle tells whether the bucket holds no information: full and unused.
func (b *bucket) idle(now time.Time) bool {
	return b.inflight == 0 && b.lim.TokensAt(now) >= float64(b.lim.Burst())
}

// maxTracked bounds each map; past it, idle buckets are dropped.
const maxTracked = 100_000

func newThrottle(opts ThrottleOptions) *throttle {
	if opts.AccountBurst <= 0 {
		opts.AccountBurst = 5
	}
	if opts.AccountEvery <= 0 {
		opts.AccountEvery = time.Minute
	}
	if opts.AddressBurst <= 0 {
		opts.AddressBurst = 20
	}
	if opts.AddressEvery <= 0 {
		opts.AddressEvery = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &throttle{opts: opts, accounts: map[[32]byte]*bucket{}, addresses: map[netip.Prefix]*bucket{}}
}

// accountKey names an account by a hash of its normalized address, so the
// map holds no email address.
func accountKey(email string) [32]byte {
	return sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
}

// attempt is one attempt being checked, counted against its account's
// and its address's buckets until it ends.
type attempt struct {
	t                *throttle
	account, address *bucket
	accountKey       [32]byte
}

// begin starts an attempt for the account named by key from addr. When
// either bucket has no room it returns nil and how long to wait.
func (t *throttle) begin(key string, addr netip.Prefix) (*attempt, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Clock()
	a := &attempt{t: t, accountKey: accountKey(key)}
	var ok bool
	if a.account, ok = bucketIn(t, t.accounts, a.accountKey, now, t.opts.AccountEvery, t.opts.AccountBurst); !ok {
		return nil, sweepEvery
	}
	if a.address, ok = bucketIn(t, t.addresses, addr, now, t.opts.AddressEvery, t.opts.AddressBurst); !ok {
		return nil, sweepEvery
	}
	if wait := max(a.account.wait(now), a.address.wait(now)); wait > 0 {
		return nil, wait
	}
	a.account.inflight++
	a.address.inflight++
	return a, 0
}

// failed ends an attempt whose password was wrong: it drains a token from
// both buckets.
func (a *attempt) failed() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	now := a.t.opts.Clock()
	a.account.inflight--
	a.address.inflight--
	a.account.lim.AllowN(now, 1)
	a.address.lim.AllowN(now, 1)
}

// succeeded ends an attempt with the right password: the account's
// failures are forgotten and the address is not charged.
func (a *attempt) succeeded() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.address.inflight--
	delete(a.t.accounts, a.accountKey)
}

// abandoned ends an attempt that never got to the password (a malformed
// address, a busy server): nothing is charged.
func (a *attempt) abandoned() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.account.inflight--
	a.address.inflight--
}

// newBucketLimiter returns a full bucket of burst tokens refilling one per
// every.
func newBucketLimiter(every time.Duration, burst int) *rate.Limiter {
	return rate.NewLimiter(rate.Every(every), burst)
}

// sweepEvery bounds how often a full map is swept, so a flood of new keys
// cannot make every attempt scan the whole map.
const sweepEvery = 10 * time.Second

// bucketIn returns k's bucket, making it if needed. When the map is full
// and a sweep of idle buckets frees no room, it refuses (ok false): under
// such a flood new keys wait rather than go unthrottled.
func bucketIn[K comparable](t *throttle, m map[K]*bucket, k K, now time.Time, every time.Duration, burst int) (*bucket, bool) {
	if b, ok := m[k]; ok {
		return b, true
	}
	if len(m) >= maxTracked {
		if now.Sub(t.lastSweep) < sweepEvery {
			return nil, false
		}
		t.lastSweep = now
		for key, old := range m {
			if old.idle(now) {
				delete(m, key)
			}
		}
		if len(m) >= maxTracked {
			return nil, false
		}
	}
	b := &bucket{lim: newBucketLimiter(every, burst)}
	m[k] = b
	return b, true
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// clientAddr finds the address a request came from, counting only
// X-Forwarded-For entries added by trusted proxies, and widens IPv6
// addresses to their /64, which one client typically holds whole.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = hop
			if !isTrusted(hop, trusted) {
				break
			}
		}
	}
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}
