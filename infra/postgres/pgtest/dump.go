package pgtest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Dump returns a pg_dump of the database at url, as a subpoena or a
// seizure would take it. It needs PostgreSQL's client tools on PATH.
func Dump(tb testing.TB, url string) []byte {
	tb.Helper()
	out, err := exec.Command("pg_dump", "--no-owner", url).Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		tb.Fatalf("pg_dump (the subpoena drill needs PostgreSQL's client tools on PATH): %v\n%s", err, stderr)
	}
	return out
}

// AssertAbsent fails the test if dump holds any of secrets (named by what
// they are) in any encoding Presente or its libraries could write: plain,
// JSON-escaped, \u-escaped, base64, hex, any case.
func AssertAbsent(tb testing.TB, when string, dump []byte, secrets map[string]string) {
	tb.Helper()
	lower := bytes.ToLower(dump)
	for what, s := range secrets {
		jsonText, _ := json.Marshal(s)
		asciiJSON := strconv.QuoteToASCII(s) // \u escapes, as other JSON writers emit
		for encoding, form := range map[string]string{
			"plain":     s,
			"JSON":      strings.Trim(string(jsonText), `"`),
			"JSONASCII": strings.Trim(asciiJSON, `"`),
			"base64":    base64.StdEncoding.EncodeToString([]byte(s)),
			"base64raw": base64.RawStdEncoding.EncodeToString([]byte(s)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(s)),
			"hex":       hex.EncodeToString([]byte(s)),
		} {
			if bytes.Contains(lower, bytes.ToLower([]byte(form))) {
				tb.Errorf("%s: the dump contains the %s in %s form", when, what, encoding)
			}
		}
	}
}
