package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/djangotest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestDjangoSimpleJWTResourceServer: a real Django REST framework resource
// server running SimpleJWT that verifies with the issuer's JWKS (JWK_URL,
// AUDIENCE, ISSUER; no shared secret) accepts the access tokens of the
// compat endpoints and refuses our refresh tokens, access tokens without
// SimpleJWT's token_type (client credentials) and expired ones; it follows
// an emergency key rotation through the JWKS. Both RS256 and ES256, the
// algorithms the "Algorithms" section of docs/keys.md offers that SimpleJWT
// verifies with a JWK_URL, are run.
func TestDjangoSimpleJWTResourceServer(t *testing.T) {
	python, version := djangotest.SimpleJWT(t)
	t.Logf("%s with SimpleJWT %s", python, version)
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			ti, _ := startCompat(t, func(c *config.Config) { c.SigningAlg = alg })
			alice := ti.createUser(t, "alice", "alice's password")
			rs := startDjango(t, python, map[string]any{
				"ALGORITHM":     alg,
				"JWK_URL":       ti.URL + "/.well-known/jwks.json",
				"AUDIENCE":      e2eAudience,
				"ISSUER":        ti.URL,
				"USER_ID_CLAIM": "user_id",
			})

			if status, body := rs.whoami(t, ""); status != 401 {
				t.Errorf("no token: %d %s, want 401", status, body)
			}
			access, refresh := ti.sjLogin(t, "alice", "alice's password")
			status, body := rs.whoami(t, access)
			if status != 200 || body["user_id"] != alice.ID {
				t.Fatalf("compat access token: %d %v, want 200 with user_id %q", status, body, alice.ID)
			}
			if status, body := rs.whoami(t, refresh); status != 401 || body["code"] != "token_not_valid" {
				t.Errorf("refresh token: %d %v, want 401 token_not_valid", status, body)
			}

			// Signed by the same key for the same audience: refused for
			// lacking token_type alone.
			id, sec := ti.createClient(t, map[string]any{"audience": []string{e2eAudience}})
			cc := ti.issue(t, id, sec)["access_token"].(string)
			if _, c := decodeJWT(t, cc); c["iss"] != ti.URL || !strings.Contains(strings.Join(toStrings(c["aud"]), " "), e2eAudience) {
				t.Fatalf("client credentials token claims %v, want iss and aud as the compat tokens'", c)
			}
			if status, body := rs.whoami(t, cc); status != 401 || !hasMessage(body, "Token has no type") {
				t.Errorf("client credentials access token: %d %v, want 401 for its missing token type", status, body)
			}

			// SimpleJWT reads the real clock: issue a token whose lifetime
			// ended a minute ago.
			back := ti.cfg.AccessTokenTTL + time.Minute
			ti.clock.Advance(-back)
			expired, _ := ti.sjLogin(t, "alice", "alice's password")
			ti.clock.Advance(back)
			if status, body := rs.whoami(t, expired); status != 401 || body["code"] != "token_not_valid" {
				t.Errorf("expired access token: %d %v, want 401 token_not_valid", status, body)
			}

			// A key SimpleJWT has not seen: PyJWKClient fetches the JWKS again.
			if resp, m := ti.admin(t, "POST", "/admin/keys/rotate", nil); resp.StatusCode != http.StatusCreated {
				t.Fatalf("emergency key rotation: %d %v", resp.StatusCode, m)
			}
			fresh, _ := ti.sjLogin(t, "alice", "alice's password")
			if h, _ := decodeJWT(t, fresh); h["kid"] == mustHeader(t, access)["kid"] {
				t.Fatalf("the token after the rotation has the old kid %v", h["kid"])
			}
			if status, body := rs.whoami(t, fresh); status != 200 || body["user_id"] != alice.ID {
				t.Errorf("access token of the new key: %d %v", status, body)
			}
			if status, body := rs.whoami(t, access); status != 200 {
				t.Errorf("access token of the retired key, still published: %d %v", status, body)
			}
		})
	}
}

func mustHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _ := decodeJWT(t, raw)
	return h
}

// hasMessage reports whether SimpleJWT's refusal lists message among the
// reasons each token class gave.
func hasMessage(body map[string]any, message string) bool {
	msgs, _ := body["messages"].([]any)
	for _, m := range msgs {
		if m, _ := m.(map[string]any); m["message"] == message {
			return true
		}
	}
	return false
}

// djangoSettings is the settings module of the resource server; %s is
// the SIMPLE_JWT dictionary.
const djangoSettings = `SECRET_KEY = "issuer django_test, not secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
# auth and contenttypes because SimpleJWT's authentication imports Django's
# user model; no DATABASES: nothing here reads one.
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE = []
ROOT_URLCONF = "urls"
USE_TZ = True
REST_FRAMEWORK = {
    # Stateless: SimpleJWT's default JWTAuthentication looks the token's
    # user up in Django's own user table. The users live in the issuer, so
    # the resource server has no such row; it takes the user (a TokenUser)
    # from the verified token's claims instead.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
# The issuer signs; Django only verifies, with the public key JWK_URL
# serves for the token's kid. SIGNING_KEY and VERIFYING_KEY are unused.
SIMPLE_JWT = %s
`

// djangoURLs is the URLconf: GET /whoami/ answers the id of the token's
// user.
const djangoURLs = `from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def whoami(request):
    return Response({"user_id": request.user.id})


urlpatterns = [path("whoami/", whoami)]
`

// djangoManage is the manage.py that django-admin startproject writes,
// without its comments.
const djangoManage = `import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`

// django is a Django resource server run by manage.py runserver.
type django struct{ base string }

// startDjango writes a Django project with simpleJWT as its SIMPLE_JWT
// setting into a directory of t's and serves it with runserver on a free
// port until t ends.
func startDjango(t *testing.T, python string, simpleJWT map[string]any) *django {
	t.Helper()
	dir := t.TempDir()
	// JSON's strings, numbers and lists are Python literals too.
	sj, err := json.MarshalIndent(simpleJWT, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"settings.py": strings.Replace(djangoSettings, "%s", string(sj), 1),
		"urls.py":     djangoURLs,
		"manage.py":   djangoManage,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Another process may take the free port before runserver binds it:
	// then try another.
	for attempt := 1; ; attempt++ {
		addr := testutil.FreeAddr(t)
		p, err := testutil.StartProcess("django runserver", python,
			[]string{"manage.py", "runserver", "--noreload", addr}, djangotest.Environ(),
			testutil.WithDir(dir), testutil.WithStopSignal(syscall.SIGINT)) // runserver exits 0 on ^C
		if err != nil {
			t.Fatal(err)
		}
		d := &django{base: "http://" + addr}
		err = p.WaitReady(t.Context(), 60*time.Second, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/whoami/", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if err == nil {
			t.Cleanup(func() {
				if err := p.Stop(); err != nil {
					t.Errorf("stop Django: %v\n%s", err, p.Tail())
				}
			})
			return d
		}
		_ = p.Stop()
		if attempt == 3 || !strings.Contains(p.Output(), "already in use") {
			t.Fatal(err)
		}
	}
}

// whoami calls GET /whoami/ with token as a Bearer token (none when
// empty) and returns the status and the JSON body.
func (d *django) whoami(t *testing.T, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", d.base+"/whoami/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET /whoami/: %d, not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}
