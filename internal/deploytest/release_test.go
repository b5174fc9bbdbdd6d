package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeRelease runs `make release` twice for linux/amd64 (the other
// platforms build the same way, with another GOOS and GOARCH) into two
// directories: the binaries are byte for byte the same (a reproducible
// build), SHA256SUMS holds their right sums in sha256sum's format, and the
// binary reports the version it was built with.
func TestMakeRelease(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	const version = "v9.9.9-releasetest"
	const name = "issuer-" + version + "-linux-amd64"
	build := func() string {
		dist := filepath.Join(t.TempDir(), "dist")
		cmd := exec.Command("make", "release", "RELEASE_PLATFORMS=linux/amd64", "VERSION="+version, "DIST="+dist)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make release: %v\n%s", err, out)
		}
		return dist
	}
	a, b := build(), build()

	sums, err := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(a, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
	sumsB, err := os.ReadFile(filepath.Join(b, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if string(sumsB) != string(sums) {
		t.Errorf("two builds of the same tree differ:\n%s\n%s", sums, sumsB)
	}
	out, err := exec.Command(filepath.Join(a, name), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "issuer "+version) {
		t.Errorf("%s version = %q, %v; want issuer %s", name, out, err, version)
	}
}
