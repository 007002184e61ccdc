package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/bus/natstest"
)

// TestMeasureLiveLatencyLocalBusVersusNATS measures, in one run, how long
// after a command is acknowledged a websocket board shows it: on a single
// server with the local bus, and on three instances sharing a NATS
// JetStream stream (the command on one instance, boards on all). Commands
// alternate between the two deployments, so both see the same machine.
// Then it kills the relaying instance's session several times and times
// the takeover. docs/BENCHMARKS.md has the results. It is a measurement,
// not a check: it runs only with PRESENTE_MEASURE=1.
//
//	PRESENTE_MEASURE=1 go test -count=1 -run TestMeasureLiveLatency -v ./cmd/presente/
func TestMeasureLiveLatencyLocalBusVersusNATS(t *testing.T) {
	if os.Getenv("PRESENTE_MEASURE") == "" {
		t.Skip("a measurement, not a check: set PRESENTE_MEASURE=1 to run it")
	}
	url := natstest.URL(t)
	stream := natstest.Stream(t, url)
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	single := startCluster(t, 1, logger.Named("single"))
	multi := startCluster(t, 3, logger.Named("multi"), "--bus", "nats", "--nats-url", url, "--nats-stream", stream)
	leader := multi.leader(t, nil, 15*time.Second)

	singleClient := dialBoard(t, "single", single.instances[0], single.cookie, nil)
	var multiClients []*boardClient
	for i, s := range multi.instances {
		multiClients = append(multiClients, dialBoard(t, fmt.Sprint("instance ", i), s, multi.cookie, nil))
	}

	// shown is how long after acknowledged b showed request id (0 when
	// the delta overtook the answer).
	shown := func(b *boardClient, id uuid.UUID, acknowledged time.Time) time.Duration {
		b.mu.Lock()
		defer b.mu.Unlock()
		return max(0, b.seen[id].Sub(acknowledged))
	}
	const warmUp, commands = 20, 300
	var local, sameInstance, otherInstance, relayInstance, onRelay, offRelay []time.Duration
	for i := range warmUp + commands {
		id := report(t, single.instances[0])
		at := time.Now()
		waitFor(t, []*boardClient{singleClient}, []uuid.UUID{id}, 60*time.Second)
		if i >= warmUp {
			local = append(local, shown(singleClient, id, at))
		}
		time.Sleep(10 * time.Millisecond)

		on := i % len(multi.instances)
		id = report(t, multi.instances[on])
		at = time.Now()
		waitFor(t, multiClients, []uuid.UUID{id}, 60*time.Second)
		if i >= warmUp {
			for j, b := range multiClients {
				d := shown(b, id, at)
				if j == on {
					sameInstance = append(sameInstance, d)
				} else {
					otherInstance = append(otherInstance, d)
				}
				if multi.instances[j] == leader {
					relayInstance = append(relayInstance, d)
				}
				if multi.instances[on] == leader {
					onRelay = append(onRelay, d)
				} else {
					offRelay = append(offRelay, d)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("commit → board delta, %d commands each (ms):", commands)
	t.Logf("  single server, local bus:                       %s", summary(local))
	t.Logf("  3 instances, NATS, board on the command's:      %s", summary(sameInstance))
	t.Logf("  3 instances, NATS, board on another instance:   %s", summary(otherInstance))
	t.Logf("  3 instances, NATS, board on the relaying one:   %s", summary(relayInstance))
	t.Logf("  3 instances, NATS, command on the relaying one: %s", summary(onRelay))
	t.Logf("  3 instances, NATS, command on another one:      %s", summary(offRelay))

	// Takeover: the relaying instance's session dies; a command made at
	// that moment reaches every board once another instance relays.
	var takeover, disruption []time.Duration
	for range 5 {
		old := multi.leader(t, nil, 15*time.Second)
		var pid int32
		if err := old.pool.QueryRow(context.Background(), `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
			WHERE a.application_name = $1 AND a.datname = current_database() AND l.locktype = 'advisory' AND l.granted`,
			bus.LeaderApplicationName).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if _, err := old.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		id := report(t, multi.instances[0])
		next := multi.leader(t, old, 15*time.Second)
		takeover = append(takeover, time.Since(killed))
		waitFor(t, multiClients, []uuid.UUID{id}, 60*time.Second)
		var last time.Time
		for _, b := range multiClients {
			b.mu.Lock()
			if b.seen[id].After(last) {
				last = b.seen[id]
			}
			b.mu.Unlock()
		}
		disruption = append(disruption, last.Sub(killed))
		_ = next
		// Let the old leader notice and settle as a follower.
		time.Sleep(2 * time.Second)
	}
	t.Logf("leader takeover after its session is killed (5 times): %s", summaryAll(takeover))
	t.Logf("  a command made at the kill, shown on every board after: %s", summaryAll(disruption))

	// The relaying instance stops (SIGTERM's path), twice: 3 instances
	// to 2, then 2 to 1. A command made on a survivor at that moment
	// reaches the survivors' boards once another instance relays.
	takeover, disruption = nil, nil
	clientOf := map[*server]*boardClient{}
	for i, s := range multi.instances {
		clientOf[s] = multiClients[i]
	}
	for range 2 {
		old := multi.leader(t, nil, 15*time.Second)
		var survivor *server
		var boards []*boardClient
		for _, s := range multi.instances {
			if s != old && !multi.stopped[s] {
				survivor = s
				boards = append(boards, clientOf[s])
			}
		}
		stopping := time.Now()
		multi.stop(t, old)
		id := report(t, survivor)
		multi.leader(t, old, 15*time.Second)
		takeover = append(takeover, time.Since(stopping))
		waitFor(t, boards, []uuid.UUID{id}, 60*time.Second)
		var last time.Time
		for _, b := range boards {
			b.mu.Lock()
			if b.seen[id].After(last) {
				last = b.seen[id]
			}
			b.mu.Unlock()
		}
		disruption = append(disruption, last.Sub(stopping))
	}
	t.Logf("leader takeover after the relaying instance begins to stop (2 times): %s", summaryAll(takeover))
	t.Logf("  a command made then, shown on every surviving board after: %s", summaryAll(disruption))
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", ms(percentile(s, 0.5)), ms(percentile(s, 0.9)),
		ms(percentile(s, 0.99)), ms(s[len(s)-1]), len(s))
}

func summaryAll(ds []time.Duration) string {
	var out string
	for _, d := range ds {
		out += ms(d) + " "
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%sms (median %s)", out, ms(percentile(s, 0.5)))
}
