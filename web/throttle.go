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
	accounts  map[[32]byte]*rate.Limiter
	addresses map[netip.Prefix]*rate.Limiter
	lastSweep time.Time
}

// maxTracked bounds each map; past it, buckets that have refilled are
// dropped, as they hold no information any more.
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
	return &throttle{opts: opts, accounts: map[[32]byte]*rate.Limiter{}, addresses: map[netip.Prefix]*rate.Limiter{}}
}

// accountKey names an account by a hash of its normalized address, so the
// map holds no email address.
func accountKey(email string) [32]byte {
	return sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
}

// attempt is one sign-in attempt holding a token from its account's and
// its address's buckets.
type attempt struct {
	t       *throttle
	account [32]byte
	address *rate.Reservation
}

// begin takes a token from the account's and the address's buckets before
// the password is checked, so concurrent guesses cannot all slip through
// between a check and its count. When either bucket is empty it takes
// nothing and returns how long to wait.
func (t *throttle) begin(key string, addr netip.Prefix) (*attempt, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Clock()
	a := &attempt{t: t, account: accountKey(key)}
	acc, ok := bucketIn(t, t.accounts, a.account, now, t.opts.AccountEvery, t.opts.AccountBurst)
	if !ok {
		return nil, t.opts.AddressEvery
	}
	adr, ok := bucketIn(t, t.addresses, addr, now, t.opts.AddressEvery, t.opts.AddressBurst)
	if !ok {
		return nil, t.opts.AddressEvery
	}
	if wait := max(delay(acc, now), delay(adr, now)); wait > 0 {
		return nil, wait
	}
	acc.AllowN(now, 1)
	a.address = adr.ReserveN(now, 1)
	return a, 0
}

// succeeded gives the tokens back: the holder knows the password, so the
// account's failures are forgotten and the address is not charged.
func (a *attempt) succeeded() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	delete(a.t.accounts, a.account)
	a.address.CancelAt(a.t.opts.Clock())
}

// delay is how long until the bucket holds one token.
func delay(l *rate.Limiter, now time.Time) time.Duration {
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.Limit()) * float64(time.Second))
}

// sweepEvery bounds how often a full map is swept, so a flood of new keys
// cannot make every attempt scan the whole map.
const sweepEvery = 10 * time.Second

// bucketIn returns k's bucket, making it if needed. When the map is full
// and a sweep of refilled buckets frees no room, it refuses (ok false):
// under such a flood new keys wait rather than go unthrottled.
func bucketIn[K comparable](t *throttle, m map[K]*rate.Limiter, k K, now time.Time, every time.Duration, burst int) (*rate.Limiter, bool) {
	if l, ok := m[k]; ok {
		return l, true
	}
	if len(m) >= maxTracked {
		if now.Sub(t.lastSweep) < sweepEvery {
			return nil, false
		}
		t.lastSweep = now
		for key, old := range m {
			if old.TokensAt(now) >= float64(old.Burst()) {
				delete(m, key)
			}
		}
		if len(m) >= maxTracked {
			return nil, false
		}
	}
	l := rate.NewLimiter(rate.Every(every), burst)
	m[k] = l
	return l, true
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
