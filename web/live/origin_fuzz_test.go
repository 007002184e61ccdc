package live

import (
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// FuzzOrigin reads arbitrary Origin headers, as every websocket handshake
// sends one, and arbitrary configured origins. An origin that is accepted
// reads back as itself in its normal form (so two spellings of one origin
// compare equal), and a hub configured with it lets a page from it in,
// under either spelling, and nothing else.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://presente.example.org", "HTTP://LocalHost:8080", "http://localhost:80", "https://[::1]:443",
		"https://a.example/", "https://a.example/path", "https://user@a.example", "null", "file://", "https://a.example:99999",
		"https://a.example?x", "https://a.example#x", "http://%41.example", "https://a.example:"} {
		f.Add(s, "https://presente.example.org")
	}
	f.Fuzz(func(t *testing.T, configured, sent string) {
		key, err := originKey(configured)
		if err != nil {
			if !strings.Contains(err.Error(), "origin") {
				t.Fatalf("error %q does not say what was wrong", err)
			}
			return
		}
		if again, err := originKey(key); err != nil || again != key {
			t.Fatalf("%q -> %q -> %q, %v: the normal form is not stable", configured, key, again, err)
		}
		h := New(Options{Logger: zap.NewNop(), AllowedOrigins: []string{configured}})
		for _, o := range []string{configured, key} {
			r := httptest.NewRequest("GET", "/api/v1/live", nil)
			r.Header.Set("Origin", o)
			if !h.originAllowed(r) {
				t.Fatalf("configured %q, a page from %q was refused", configured, o)
			}
		}
		r := httptest.NewRequest("GET", "/api/v1/live", nil)
		r.Header.Set("Origin", sent)
		sentKey, err := originKey(sent)
		if want := err == nil && sentKey == key; h.originAllowed(r) != want {
			t.Fatalf("configured %q, a page from %q: allowed = %v, want %v", configured, sent, !want, want)
		}
	})
}
