package bus

// Silence stops l's pings while it leads, as if its machine had vanished
// without closing its connection.
func Silence(l *Leadership) { l.silent.Store(true) }
