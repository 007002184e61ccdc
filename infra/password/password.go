// Package password hashes and checks account passwords with argon2id at
// OWASP ASVS 5.0 strength (V11.4.2: at least 19 MiB of memory, 2
// iterations, 1 degree of parallelism), in the PHC string format, so the
// parameters travel with each hash and can be raised later.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Length limits, in characters. No composition rules: length is what
// makes a password strong (NIST SP 800-63B, ASVS V6.2).
const (
	MinLength = 12
	MaxLength = 256
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// Default is the strength new hashes are made with.
var Default = Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrTooShort and ErrTooLong report a password outside the length limits.
var (
	ErrTooShort = fmt.Errorf("the password must be at least %d characters long", MinLength)
	ErrTooLong  = fmt.Errorf("the password may be at most %d characters long", MaxLength)
)

// Validate checks a new password against the length limits. Spaces and any
// Unicode are allowed. Characters are counted in NFC form, which joins a
// letter and its combining accent but never expands one character into
// several (NFKC turns "ﷺ" into eighteen letters); the password is hashed in
// NFKC form, so the same password typed on another keyboard still matches.
func Validate(pw string) error {
	n := utf8.RuneCountInString(norm.NFC.String(pw))
	switch {
	case !utf8.ValidString(pw):
		return errors.New("the password is not valid text")
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	}
	return nil
}

// Hash validates a new password and returns its argon2id hash in PHC form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func Hash(pw string) (string, error) {
	if err := Validate(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	p := Default
	key := argon2.IDKey([]byte(norm.NFKC.String(pw)), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify tells whether pw matches encoded, in constant time, and whether
// the hash was made with weaker parameters than Default and should be
// replaced now that the password is known.
func Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	p, salt, want, err := parse(encoded)
	if err != nil {
		return false, false, err
	}
	if utf8.RuneCountInString(pw) > 4*MaxLength { // never spend argon2 on a megabyte
		return false, false, nil
	}
	got := argon2.IDKey([]byte(norm.NFKC.String(pw)), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	weaker := p.MemoryKiB < Default.MemoryKiB || p.Iterations < Default.Iterations ||
		p.Parallelism != Default.Parallelism || len(want) != keyLen
	return ok, ok && weaker, nil
}

// Bounds on parameters read from a stored hash: a hash altered in the
// database must not make one sign-in attempt take gigabytes or hours.
const (
	maxMemoryKiB   = 64 * 1024
	maxIterations  = 10
	maxParallelism = 4
	maxBytes       = 64
)

func parse(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errors.New("not an argon2id PHC hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var p Params
	_, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism)
	if err != nil || fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism) != parts[3] {
		return Params{}, nil, nil, fmt.Errorf("malformed argon2 parameters %q", parts[3])
	}
	if p.Iterations < 1 || p.Iterations > maxIterations || p.Parallelism < 1 || p.Parallelism > maxParallelism ||
		p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > maxMemoryKiB {
		return Params{}, nil, nil, fmt.Errorf("argon2 parameters out of range %q", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxBytes {
		return Params{}, nil, nil, errors.New("malformed argon2 salt")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxBytes {
		return Params{}, nil, nil, errors.New("malformed argon2 hash")
	}
	return p, salt, key, nil
}
