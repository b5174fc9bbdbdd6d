// Package djangotest runs real Django for tests that check compatibility
// with what Django writes — its password hashes and the JSON of
// `manage.py dumpdata` — and with what it reads: a Django REST framework
// resource server running SimpleJWT that verifies the issuer's tokens.
//
// It runs Debian's Python (/usr/bin/python3, or the interpreter named by
// ISSUER_TEST_PYTHON) with Debian's python3-django, python3-argon2 and
// python3-bcrypt, and for SimpleJWT python3-djangorestframework,
// python3-djangorestframework-simplejwt, python3-jwt and
// python3-cryptography, which scripts/test-deps.sh installs. A test that
// needs them fails, rather than skips, when they are missing. Debian's
// Python is named rather than the first python3 on PATH because a Python
// installed apart (pyenv, a virtualenv) does not see Debian's packages.
package djangotest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultPython is the interpreter used unless ISSUER_TEST_PYTHON names
// another.
const DefaultPython = "/usr/bin/python3"

// timeout bounds each Python process.
const timeout = 2 * time.Minute

var checkPython = sync.OnceValues(func() (string, error) {
	python := os.Getenv("ISSUER_TEST_PYTHON")
	if python == "" {
		python = DefaultPython
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", "import django, argon2, bcrypt")
	cmd.Env = environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return python, &missingError{python: python, out: strings.TrimSpace(string(out)), err: err}
	}
	return python, nil
})

type missingError struct {
	python, out string
	err         error
}

func (e *missingError) Error() string {
	return e.python + " cannot import django, argon2 and bcrypt (" + e.err.Error() + ": " + e.out +
		"); run scripts/test-deps.sh, which installs Debian's python3-django, python3-argon2 and python3-bcrypt"
}

// Python returns the path of a Python that imports Django, argon2-cffi and
// bcrypt, and fails t if there is none.
func Python(t testing.TB) string {
	t.Helper()
	python, err := checkPython()
	if err != nil {
		t.Fatal(err)
	}
	return python
}

// simpleJWTCheck imports what a SimpleJWT resource server with JWK_URL
// needs: without PyJWT's JWK client SimpleJWT silently ignores JWK_URL,
// and without cryptography it has no RS256 or ES256.
const simpleJWTCheck = `import django, rest_framework, rest_framework_simplejwt, cryptography
from jwt import PyJWKClient
from importlib.metadata import version
print(version("djangorestframework-simplejwt"))`

var checkSimpleJWT = sync.OnceValues(func() (string, error) {
	python, err := checkPython()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", simpleJWTCheck)
	cmd.Env = environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s cannot import Django REST framework, SimpleJWT, PyJWT's JWK client and cryptography (%v: %s); "+
			"run scripts/test-deps.sh, which installs Debian's python3-djangorestframework, python3-djangorestframework-simplejwt, "+
			"python3-jwt and python3-cryptography", python, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
})

// SimpleJWT returns the path of a Python that runs a Django REST framework
// resource server with SimpleJWT verifying RS256 and ES256 tokens against
// a JWK_URL, and the version of SimpleJWT it has. It fails t if there is
// none.
func SimpleJWT(t testing.TB) (python, version string) {
	t.Helper()
	python = Python(t)
	version, err := checkSimpleJWT()
	if err != nil {
		t.Fatal(err)
	}
	return python, version
}

// Environ returns the environment for a Python program that a test starts
// itself, such as a server: the test's, less the variables that would
// point Python at other packages or another project.
func Environ() []string { return environ() }

// Run runs the Python program script with stdin as its standard input and
// returns its standard output. It fails t if the program fails.
func Run(t testing.TB, script string, stdin []byte) []byte {
	t.Helper()
	return run(t, "", stdin, Python(t), "-c", script)
}

// Project is a throwaway Django project on SQLite, with the auth and
// contenttypes applications migrated and Django's default password hashers
// configured.
type Project struct {
	// Dir holds manage.py, settings.py and the database.
	Dir    string
	python string
}

const settings = `SECRET_KEY = "djangotest, not secret"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
]
`

// manage is the manage.py that django-admin startproject writes, without
// its comments.
const manage = `import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`

// NewProject makes a project in a directory of t's and migrates its
// database.
func NewProject(t testing.TB) *Project {
	t.Helper()
	p := &Project{Dir: t.TempDir(), python: Python(t)}
	for name, text := range map[string]string{"settings.py": settings, "manage.py": manage} {
		if err := os.WriteFile(filepath.Join(p.Dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.Manage(t, "migrate", "--verbosity", "0")
	return p
}

// Manage runs manage.py with args in the project and returns its standard
// output.
func (p *Project) Manage(t testing.TB, args ...string) []byte {
	t.Helper()
	return run(t, p.Dir, nil, p.python, append([]string{"manage.py"}, args...)...)
}

// Shell runs the Python program script with Django set up for the project
// (manage.py shell -c) and returns its standard output.
func (p *Project) Shell(t testing.TB, script string) []byte {
	t.Helper()
	return p.Manage(t, "shell", "-c", script)
}

func run(t testing.TB, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = environ()
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, args[0], err, stderr.Bytes())
	}
	return out
}

// environ is the process environment less the variables that would point
// Python at other packages or another project.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHON") && !strings.HasPrefix(kv, "DJANGO_") {
			env = append(env, kv)
		}
	}
	return append(env, "PYTHONDONTWRITEBYTECODE=1")
}
