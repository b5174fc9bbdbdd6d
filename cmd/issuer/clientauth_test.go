package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientsCreatePrivateKeyJWT registers a private_key_jwt client from a
// JWK Set file: the CLI prints the client_id and no secret, and the issuer
// keeps the keys.
func TestClientsCreatePrivateKeyJWT(t *testing.T) {
	ts := startServer(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	set := `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","x":"` + enc(pub[1:33]) + `","y":"` + enc(pub[33:]) + `"}]}`
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, []byte(set), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, runClients, ts.env(), "create", "--name", "keyed", "--audience", "https://a.example",
		"--auth-method", "private_key_jwt", "--jwks-file", file, "--signing-alg", "ES256")
	if res.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", res.code, res.stderr)
	}
	id, ok := strings.CutPrefix(strings.TrimSuffix(res.stdout, "\n"), "client_id: ")
	if !ok || strings.Contains(id, "\n") || res.stderr != "" {
		t.Fatalf("stdout %q, stderr %q; want only the client_id line", res.stdout, res.stderr)
	}
	got, err := ts.api().GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	_ = json.Unmarshal([]byte(set), &want)
	_ = json.Unmarshal(got.JWKS, &have)
	if got.TokenEndpointAuthMethod != "private_key_jwt" || got.TokenEndpointAuthSigningAlg != "ES256" || !jsonEqual(want, have) {
		t.Errorf("registered %+v (jwks %s), want private_key_jwt, ES256 and the file's keys", got.ClientMetadata, got.JWKS)
	}

	res = runCLI(t, runClients, ts.env(), "get", id)
	if res.code != 0 || !strings.Contains(res.stdout, "token_endpoint_auth_signing_alg: ES256\n") || !strings.Contains(res.stdout, `"kid":"k1"`) {
		t.Errorf("get: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--name", "x", "--auth-method", "private_key_jwt", "--jwks-file", file, "--jwks-uri", "https://k.example/jwks"}, "give one, not both"},
		{[]string{"create", "--name", "x", "--auth-method", "private_key_jwt", "--jwks-file", filepath.Join(t.TempDir(), "missing")}, "--jwks-file"},
		{[]string{"create", "--name", "x", "--auth-method", "federated_jwt", "--federated-claim", "novalue"}, "NAME=VALUE"},
	} {
		if res := runCLI(t, runClients, ts.env(), tt.args...); res.code != 2 || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
	// The server's refusal reaches the user as a sentence.
	res = runCLI(t, runClients, ts.env(), "create", "--name", "x", "--audience", "https://a.example", "--auth-method", "private_key_jwt")
	if res.code == 0 || !strings.Contains(res.stderr, "needs the client's public keys") {
		t.Errorf("no keys: exit %d, stderr %q", res.code, res.stderr)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
