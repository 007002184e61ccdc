package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainImportsOnlyStandardLibraryAndUUID keeps the dependency arrow
// pointing inward: nothing under domain/ may reach storage, transport,
// logging or the outer layers of Presente.
func TestDomainImportsOnlyStandardLibraryAndUUID(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./... (from domain/): %v\n%s", err, out)
	}
	const module = "github.com/presente-dispatch/presente/"
	var sawDomain bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, standard, _ := strings.Cut(line, " ")
		switch {
		case standard == "true":
		case path == "github.com/google/uuid":
		case path == module+"domain" || strings.HasPrefix(path, module+"domain/"):
			sawDomain = true
		default:
			t.Errorf("domain/ depends on %s; the domain may import only the standard library and github.com/google/uuid", path)
		}
	}
	if !sawDomain {
		t.Fatalf("go list did not list the domain package itself; output:\n%s", out)
	}
}
