package ui_test

import (
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/web/ui"
)

func catalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	raw, err := fs.ReadFile(ui.Assets(), "i18n/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("i18n/%s.json: %v", lang, err)
	}
	return m
}

// languages are the catalogs shipped; adding one is adding its file.
func languages(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(ui.Assets(), "i18n")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out
}

func TestEveryCatalogHasEveryMessage(t *testing.T) {
	en := catalog(t, "en")
	for _, lang := range languages(t) {
		m := catalog(t, lang)
		for k := range en {
			if strings.TrimSpace(m[k]) == "" {
				t.Errorf("i18n/%s.json lacks %q (English: %q)", lang, k, en[k])
			}
		}
		for k := range m {
			if _, ok := en[k]; !ok {
				t.Errorf("i18n/%s.json has %q, which English lacks", lang, k)
			}
		}
	}
}

// The messages the app asks for by name, and those it builds from the
// domain's values (a status, a priority…), are all in the catalogs.
func TestEveryMessageTheAppShowsIsInTheCatalog(t *testing.T) {
	en := catalog(t, "en")
	literal := regexp.MustCompile(`\b(?:t|plural)\('([a-z_.-]+)'`)
	var used []string
	err := fs.WalkDir(ui.Assets(), "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := fs.ReadFile(ui.Assets(), p)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			used = append(used, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 50 {
		t.Fatalf("found only %d messages in the app's code: the pattern no longer matches how it asks for them", len(used))
	}
	for _, k := range used {
		_, one := en[k+".one"]
		if _, ok := en[k]; !ok && !one {
			t.Errorf("the app shows %q, which i18n/en.json lacks", k)
		}
	}
	built := map[string][]string{
		"status":       {string(request.Received), string(request.Triaged), string(request.Assigned), string(request.InProgress), string(request.Resolved), string(request.Closed), string(request.Cancelled)},
		"priority":     {string(request.Urgent), string(request.High), string(request.Normal)},
		"kind":         {string(request.RapidResponse), string(request.Accompaniment)},
		"subkind":      request.SubKinds,
		"verification": {string(request.Unverified), string(request.Dispatched), string(request.Confirmed), string(request.FalseAlarm), string(request.CouldNotCheck)},
		"assignment":   {string(request.Offered), string(request.Accepted), string(request.Declined), string(request.EnRoute), string(request.Arrived), string(request.Done), string(request.Withdrawn)},
		"outcome":      request.Outcomes,
		"conn":         {"connecting", "live", "reconnecting", "resynced", "lagging", "signed-out"},
	}
	for _, l := range volunteer.Levels {
		built["level"] = append(built["level"], string(l))
	}
	for prefix, values := range built {
		for _, v := range values {
			if _, ok := en[prefix+"."+v]; !ok {
				t.Errorf("the app shows %s.%s, which i18n/en.json lacks", prefix, v)
			}
		}
	}
}

// The strict Content-Security-Policy allows no inline script or style and
// no eval, and the app must not need them; text goes in as text nodes.
func TestTheAppNeedsNoInlineCodeAndWritesNoHTML(t *testing.T) {
	page, err := fs.ReadFile(ui.Assets(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script(?:\s+type="module")?>`), regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`(?i)https?://`)} {
		if bad.Match(page) {
			t.Errorf("index.html has %s: the CSP forbids inline code and other origins", bad)
		}
	}
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://"}
	_ = fs.WalkDir(ui.Assets(), "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := fs.ReadFile(ui.Assets(), p)
		for _, f := range forbidden {
			if strings.Contains(string(src), f) {
				t.Errorf("%s uses %s", p, f)
			}
		}
		return nil
	})
	if !slices.Contains(languages(t), "es") {
		t.Error("the Spanish catalog is missing")
	}
}

func TestTheLanguageMenuListsEveryCatalog(t *testing.T) {
	h, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeAsset(rec, httptest.NewRequest("GET", "/assets/i18n/languages.json", nil))
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("languages.json = %d %s", rec.Code, rec.Body)
	}
	for _, lang := range languages(t) {
		if got[lang] == "" {
			t.Errorf("languages.json lacks %s: %v", lang, got)
		}
	}
	if got["es"] != "Español" || got["en"] != "English" {
		t.Errorf("languages.json = %v, want each language named in itself", got)
	}
}
