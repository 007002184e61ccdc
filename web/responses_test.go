package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Every answer the tests receive is recorded by route, and when the whole
// suite has run, TestMain checks that openapi.yaml lists each status a
// route answered with, and the error code, so the document cannot fall
// behind the errors the server really gives.

// anyRoute are the statuses any route may answer with, documented once in
// the document's description rather than on every route: no session (401),
// the wrong role, a cross-site call (403), an oversized body (413), a
// body not sent as JSON (415), an Idempotency-Key retry still running
// (409 request_in_progress) or reused with another body (422 idempotency_key_reused), and the server being
// unable to finish (503).
var anyRoute = map[int]bool{401: true, 403: true, 413: true, 415: true, 503: true}

// anyRouteAnswers are the answers, status and code, any route may give:
// for its Idempotency-Key, and for a malformed body, path, query or key,
// as the document's description says once for all.
var anyRouteAnswers = map[string]bool{"409 request_in_progress": true, "422 idempotency_key_reused": true,
	"400 invalid_json": true, "400 invalid_body": true, "400 unknown_field": true, "400 invalid_field": true,
	"400 invalid_id": true, "400 invalid_idempotency_key": true}

// anyRouteCodes are the error codes documented once, in the document's
// description, for every route: a malformed body, path or key, a record
// that does not exist, and a write that lost a race.
var anyRouteCodes = map[string]bool{"request_in_progress": true, "idempotency_key_reused": true,
	"invalid_idempotency_key": true, "invalid_json": true, "invalid_body": true, "unknown_field": true,
	"unsupported_media_type": true, "body_too_large": true, "invalid_id": true, "invalid_field": true,
	"not_found": true, "conflict": true}

var (
	observedMu sync.Mutex
	// observed maps "METHOD /pattern" to the statuses and error codes seen.
	observed = map[string]map[string]bool{}
	patterns *http.ServeMux
)

func init() {
	patterns = http.NewServeMux()
	for _, rt := range (&Server{}).routes() {
		patterns.Handle(rt.pattern, http.NotFoundHandler())
	}
}

// observe records the route, status and error code of an answer.
func observe(req *http.Request, a answer) {
	_, pattern := patterns.Handler(req)
	if pattern == "" {
		return // a path that is not a route: nothing to document
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &body)
	observedMu.Lock()
	defer observedMu.Unlock()
	if observed[pattern] == nil {
		observed[pattern] = map[string]bool{}
	}
	key := strconv.Itoa(a.status)
	if body.Error.Code != "" && a.status >= 400 {
		key += " " + body.Error.Code
	}
	observed[pattern][key] = true
}

// operation is one route's documentation: its statuses, and the text of
// its description and responses, where error codes are named.
type operation struct {
	statuses map[string]bool
	text     string
}

// operations reads openapi.yaml's operations.
func operations() map[string]*operation {
	var (
		ops       = map[string]*operation{}
		path      string
		op        *operation
		pathLine  = regexp.MustCompile(`^  (/\S*):\s*$`)
		methodRow = regexp.MustCompile(`^    (get|post|put|patch|delete):\s*$`)
		statusRow = regexp.MustCompile(`^        "(\d{3})":`)
	)
	sc := bufio.NewScanner(bytes.NewReader(openAPI))
	for sc.Scan() {
		line := sc.Text()
		switch m := methodRow.FindStringSubmatch(line); {
		case pathLine.MatchString(line):
			path, op = pathLine.FindStringSubmatch(line)[1], nil
		case m != nil && path != "":
			op = &operation{statuses: map[string]bool{}}
			ops[strings.ToUpper(m[1])+" "+path] = op
		case op != nil:
			if s := statusRow.FindStringSubmatch(line); s != nil {
				op.statuses[s[1]] = true
			}
			op.text += line + "\n"
		}
	}
	return ops
}

// undocumented lists the statuses and error codes the tests saw that the
// document does not give for their route.
func undocumented() []string {
	ops := operations()
	var missing []string
	for pattern, seen := range observed {
		op := ops[pattern]
		if op == nil {
			continue // TestTheOpenAPIDocumentListsEveryRoute reports it
		}
		for s := range seen {
			if anyRouteAnswers[s] {
				continue
			}
			status, code, _ := strings.Cut(s, " ")
			n, _ := strconv.Atoi(status)
			switch {
			case !anyRoute[n] && !op.statuses[status]:
				missing = append(missing, fmt.Sprintf("%s: status %s", pattern, status))
			case code != "" && !anyRoute[n] && !anyRouteCodes[code] && !strings.Contains(op.text, code):
				missing = append(missing, fmt.Sprintf("%s: error code %s (status %s)", pattern, code, status))
			}
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	// Only a run of the whole suite has seen every answer; a run of a few
	// tests checks nothing here.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		if missing := undocumented(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "web/openapi.yaml does not document these answers the tests received; add them to the route's responses and name the error code in its description:\n  %s\n",
				strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}
