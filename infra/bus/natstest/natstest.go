// Package natstest gives tests a NATS server with JetStream and a stream
// name of their own.
//
// Tests use the server at NATS_URL, or at nats://127.0.0.1:4222. Without
// one they are skipped, except in CI (CI=true), where they fail: a
// server is part of CI, and a test that silently skips proves nothing.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is where tests look for NATS when NATS_URL is not set.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns the URL of a reachable NATS server with JetStream enabled.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = DefaultURL
	}
	err := check(url)
	if err == nil {
		return url
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("NATS with JetStream at %s is required in CI: %v", url, err)
	}
	tb.Skipf("no NATS with JetStream at %s (set NATS_URL): %v", url, err)
	return ""
}

func check(url string) error {
	conn, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer conn.Close()
	js, err := conn.JetStream()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(nats.Context(ctx)); err != nil {
		return errors.New("JetStream is not enabled: " + err.Error())
	}
	return nil
}

// Stream returns a stream name no other test uses (its subject, and so
// its messages, are its own), and deletes the stream when the test ends.
func Stream(tb testing.TB, url string) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	name := "PRESENTE_TEST_" + strings.ToUpper(hex.EncodeToString(b))
	tb.Cleanup(func() {
		conn, err := nats.Connect(url)
		if err != nil {
			tb.Logf("delete the test stream %s: %v", name, err)
			return
		}
		defer conn.Close()
		js, err := conn.JetStream()
		if err == nil {
			err = js.DeleteStream(name)
		}
		if err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
			tb.Logf("delete the test stream %s: %v", name, err)
		}
	})
	return name
}
