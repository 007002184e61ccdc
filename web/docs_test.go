package web

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// documented reads the "METHOD /path" operations of openapi.yaml.
func documented(t *testing.T) map[string]bool {
	t.Helper()
	var (
		ops       = map[string]bool{}
		path      string
		pathLine  = regexp.MustCompile(`^  (/\S*):\s*$`)
		methodRow = regexp.MustCompile(`^    (get|post|put|patch|delete):\s*$`)
	)
	sc := bufio.NewScanner(bytes.NewReader(openAPI))
	for sc.Scan() {
		if m := pathLine.FindStringSubmatch(sc.Text()); m != nil {
			path = m[1]
		} else if m := methodRow.FindStringSubmatch(sc.Text()); m != nil && path != "" {
			ops[strings.ToUpper(m[1])+" "+path] = true
		}
	}
	if len(ops) == 0 {
		t.Fatal("found no operations in openapi.yaml")
	}
	return ops
}

func TestTheOpenAPIDocumentListsEveryRoute(t *testing.T) {
	ops := documented(t)
	s := &Server{}
	routes := map[string]bool{}
	for _, rt := range s.routes() {
		routes[rt.pattern] = true
		if !ops[rt.pattern] {
			t.Errorf("openapi.yaml does not document %s", rt.pattern)
		}
	}
	for op := range ops {
		if !routes[op] {
			t.Errorf("openapi.yaml documents %s, which is not a route", op)
		}
	}
}

func TestTheOpenAPIDocumentIsServed(t *testing.T) {
	e := newEnv(t, envOptions{noUsers: true})
	r := e.do(nil, "GET", "/api/v1/openapi.yaml", nil)
	if r.status != 200 || !strings.HasPrefix(r.body, "openapi: 3.1.0") || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /api/v1/openapi.yaml = %d %q %.40s", r.status, r.header.Get("Content-Type"), r.body)
	}
}
