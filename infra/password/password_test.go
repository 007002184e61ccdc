package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashThenVerify(t *testing.T) {
	encoded, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not argon2id at ASVS strength", encoded)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"the same password matches", "correct horse battery staple", true},
		{"another password does not", "correct horse battery stapler", false},
		{"case matters", "Correct horse battery staple", false},
		{"the empty password does not", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := Verify(tt.pw, encoded)
			if err != nil || ok != tt.want || rehash {
				t.Errorf("Verify = %v, %v, %v; want %v", ok, rehash, err, tt.want)
			}
		})
	}
}

func TestTwoHashesOfOnePasswordDiffer(t *testing.T) {
	a, _ := Hash("the same password twice")
	b, _ := Hash("the same password twice")
	if a == b {
		t.Error("two hashes are equal: the salt is not random")
	}
}

func TestValidateChecksLengthOnlyAndCountsCharacters(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"eleven characters is too short", "abcdefghijk", ErrTooShort},
		{"twelve letters are enough, no digits or symbols needed", "abcdefghijkl", nil},
		{"spaces count", "a b c d e f ", nil},
		{"eleven accented characters are too short though they are 22 bytes", "ñññññññññññ", ErrTooShort},
		{"twelve accented characters are enough", "ññññññññññññ", nil},
		{"sixty-four characters are allowed", strings.Repeat("x", 64), nil},
		{"a ligature that NFKC expands is one character", "ﷺ", ErrTooShort},
		{"four ffi ligatures are four characters", "ﬃﬃﬃﬃ", ErrTooShort},
		{"a letter and its combining accent are one character", strings.Repeat("n\u0303", 11), ErrTooShort},
		{"the maximum is allowed", strings.Repeat("x", MaxLength), nil},
		{"one more is too long", strings.Repeat("x", MaxLength+1), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Validate(tt.pw); !errors.Is(got, tt.want) {
				t.Errorf("Validate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnicodeNormalizationMakesComposedAndDecomposedTheSame(t *testing.T) {
	composed := "contraseña segura"         // ñ as one code point
	decomposed := "contrasen\u0303a segura" // n + combining tilde
	encoded, err := Hash(composed)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := Verify(decomposed, encoded); !ok {
		t.Error("the same password typed with a decomposed ñ does not match")
	}
}

func TestAWeakerHashIsFlaggedForRehash(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("an old password here"), salt, 1, 8*1024, 1, 32)
	b64 := base64.RawStdEncoding
	old := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	ok, rehash, err := Verify("an old password here", old)
	if err != nil || !ok || !rehash {
		t.Errorf("Verify = %v, %v, %v; want a match that needs rehashing", ok, rehash, err)
	}
}

func TestVerifyRefusesMalformedHashes(t *testing.T) {
	for _, encoded := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=4294967295,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // a denial of service planted in the database
		"$argon2id$v=19$m=19456,t=11,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1garbage$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 200),
	} {
		if _, _, err := Verify("whatever password", encoded); err == nil {
			t.Errorf("Verify accepted %q", encoded)
		}
	}
}
