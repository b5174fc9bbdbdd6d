package testutil_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportedOnlyByTests checks what the package doc says: besides test
// files, only the packages that support tests and the load harness import
// testutil.
func TestImportedOnlyByTests(t *testing.T) {
	const module = "github.com/issuer-oauth/issuer"
	allowed := []string{
		module + "/bench/load",
		module + "/internal/redistest",
		module + "/internal/store/storetest",
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		if slices.Contains(strings.Fields(imports), module+"/internal/testutil") && !slices.Contains(allowed, pkg) {
			t.Errorf("%s imports testutil outside its tests", pkg)
		}
	}
}
