package web

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/presente-dispatch/presente/web/ui"
)

// Every error code the API can answer has a sentence in every catalog of
// the web app, so a Spanish screen never shows the server's English.
func TestEveryErrorCodeHasASentenceInEveryLanguage(t *testing.T) {
	codes := map[string]bool{}
	for _, a := range domainAnswers {
		codes[a.code] = true
	}
	literal := regexp.MustCompile(`(?:Code|Rule):\s*"([a-z_]+)"`)
	for _, pattern := range []string{"*.go", "../domain/request/*.go"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if regexp.MustCompile(`_test\.go$`).MatchString(f) {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
				codes[m[1]] = true
			}
		}
	}
	if len(codes) < 60 {
		t.Fatalf("found only %d error codes: the pattern no longer matches how they are written", len(codes))
	}
	entries, err := fs.ReadDir(ui.Assets(), "i18n")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := fs.ReadFile(ui.Assets(), "i18n/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		var catalog map[string]string
		if err := json.Unmarshal(raw, &catalog); err != nil {
			t.Fatal(err)
		}
		for code := range codes {
			if catalog["error."+code] == "" {
				t.Errorf("i18n/%s has no sentence for the error code %q (key error.%s)", e.Name(), code, code)
			}
		}
	}
}
