package bus

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TraceLevel is the zap level watermill's trace messages are logged at:
// one below Debug, since watermill traces every message it moves. A
// logger at Debug level leaves them out.
const TraceLevel = zapcore.DebugLevel - 1

// redacted replaces a field that could carry a message's payload.
const redacted = "[redacted]"

// ZapLogger adapts a zap logger to watermill's LoggerAdapter. Fields whose
// value is raw bytes or a payload, or whose name says payload, are logged
// as "[redacted]": payloads may hold personal data, even sealed. Watermill
// logs routine events (a subscription, a message without subscribers) at
// Info; give it a logger raised to Warn (zap.IncreaseLevel) to keep them
// out of production logs.
type ZapLogger struct {
	logger *zap.Logger
}

var _ watermill.LoggerAdapter = ZapLogger{}

// NewZapLogger returns an adapter writing to logger.
func NewZapLogger(logger *zap.Logger) ZapLogger { return ZapLogger{logger: logger} }

// Error logs msg and err at Error level.
func (l ZapLogger) Error(msg string, err error, fields watermill.LogFields) {
	if ce := l.logger.Check(zapcore.ErrorLevel, msg); ce != nil {
		ce.Write(append(zapFields(fields), zap.Error(err))...)
	}
}

// Info logs msg at Info level.
func (l ZapLogger) Info(msg string, fields watermill.LogFields) {
	l.log(zapcore.InfoLevel, msg, fields)
}

// Debug logs msg at Debug level.
func (l ZapLogger) Debug(msg string, fields watermill.LogFields) {
	l.log(zapcore.DebugLevel, msg, fields)
}

// Trace logs msg at TraceLevel.
func (l ZapLogger) Trace(msg string, fields watermill.LogFields) {
	l.log(TraceLevel, msg, fields)
}

// With returns an adapter that adds fields to every entry.
func (l ZapLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return ZapLogger{logger: l.logger.With(zapFields(fields)...)}
}

func (l ZapLogger) log(level zapcore.Level, msg string, fields watermill.LogFields) {
	// Check first: building fields costs more than a disabled entry.
	if ce := l.logger.Check(level, msg); ce != nil {
		ce.Write(zapFields(fields)...)
	}
}

// zapFields converts fields in name order, redacting any that could carry
// a payload.
func zapFields(fields watermill.LogFields) []zap.Field {
	out := make([]zap.Field, 0, len(fields)+1)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		switch v.(type) {
		case []byte, message.Payload, json.RawMessage, *message.Message, message.Messages:
			v = redacted
		}
		if strings.Contains(strings.ToLower(k), "payload") {
			v = redacted
		}
		out = append(out, zap.Any(k, v))
	}
	return out
}
