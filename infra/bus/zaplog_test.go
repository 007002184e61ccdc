package bus_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/presente-dispatch/presente/infra/bus"
)

func TestZapLoggerWritesWatermillEntriesAtTheirLevelsWithTheirFields(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := bus.NewZapLogger(zap.New(core)).With(watermill.LogFields{"pubsub_uuid": "p1"})

	l.Error("publish failed", errors.New("broker away"), watermill.LogFields{"topic": "presente.events"})
	l.Info("subscribed", watermill.LogFields{"topic": "presente.events"})
	l.Debug("closing", nil)
	l.Trace("sent message", watermill.LogFields{"message_uuid": "m1"}) // below Debug: dropped

	got := logs.AllUntimed()
	if len(got) != 3 {
		t.Fatalf("logged %d entries, want 3 (trace is below debug): %v", len(got), got)
	}
	for i, want := range []struct {
		level zapcore.Level
		msg   string
	}{{zapcore.ErrorLevel, "publish failed"}, {zapcore.InfoLevel, "subscribed"}, {zapcore.DebugLevel, "closing"}} {
		if got[i].Level != want.level || got[i].Message != want.msg {
			t.Errorf("entry %d is %s %q, want %s %q", i, got[i].Level, got[i].Message, want.level, want.msg)
		}
		if got[i].ContextMap()["pubsub_uuid"] != "p1" {
			t.Errorf("entry %d lost the fields given to With: %v", i, got[i].ContextMap())
		}
	}
	if m := got[0].ContextMap(); m["error"] != "broker away" || m["topic"] != "presente.events" {
		t.Errorf("error entry fields are %v, want the error and the topic", m)
	}
}

func TestZapLoggerTracesOnlyWhenAskedTo(t *testing.T) {
	core, logs := observer.New(bus.TraceLevel)
	bus.NewZapLogger(zap.New(core)).Trace("sent message", nil)
	if logs.Len() != 1 || logs.All()[0].Level != bus.TraceLevel {
		t.Errorf("a logger at TraceLevel logged %v", logs.All())
	}
}

func TestZapLoggerNeverLogsAPayload(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := bus.NewZapLogger(zap.New(core))
	secret := "Ana Lucía Tzul +1 555 0100"
	msg := message.NewMessage("m1", message.Payload(secret))
	l.With(watermill.LogFields{"raw": []byte(secret)}).Info("received", watermill.LogFields{
		"payload":      secret,
		"msg_payload":  msg.Payload,
		"message":      msg,
		"message_uuid": msg.UUID,
	})
	l.Error("handler failed", errors.New("boom"), watermill.LogFields{"Payload": secret})

	for _, e := range logs.AllUntimed() {
		if text := fmt.Sprint(e.ContextMap()); strings.Contains(text, "Tzul") || strings.Contains(text, "0100") {
			t.Errorf("entry %q logged a payload: %s", e.Message, text)
		}
	}
	if m := logs.AllUntimed()[0].ContextMap(); m["message_uuid"] != "m1" {
		t.Errorf("the message id should still be logged: %v", m)
	}
}
