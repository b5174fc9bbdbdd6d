package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"strings"
	"testing"
)

const (
	ecJWK  = `{"kty":"EC","crv":"P-256","kid":"ec","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}`
	edJWK  = `{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	rsaJWK = `{"kty":"RSA","kid":"rsa","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`
)

func TestParse(t *testing.T) {
	set, err := Parse([]byte(`{"keys":[` + ecJWK + `,` + edJWK + `,` + rsaJWK + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set[0].Public.(*ecdsa.PublicKey); !ok || set[0].ID != "ec" || !set[0].Allows("ES256") || set[0].Allows("RS256") {
		t.Errorf("EC key = %+v", set[0])
	}
	if _, ok := set[1].Public.(ed25519.PublicKey); !ok || !set[1].Allows("EdDSA") {
		t.Errorf("Ed25519 key = %+v", set[1])
	}
	if _, ok := set[2].Public.(*rsa.PublicKey); !ok || !set[2].Allows("RS256") || !set[2].Allows("PS256") {
		t.Errorf("RSA key = %+v", set[2])
	}
	if got := strings.Join(set.Algs(), " "); got != "RS256 PS256 ES256 EdDSA" {
		t.Errorf("Algs = %s", got)
	}
	if c := set.Candidates("ec", "ES256"); len(c) != 1 {
		t.Errorf("Candidates(ec, ES256) = %d keys, want 1", len(c))
	}
	if c := set.Candidates("ec", "HS256"); len(c) != 0 {
		t.Errorf("Candidates(ec, HS256) = %d keys, want 0", len(c))
	}
	if c := set.Candidates("", "RS256"); len(c) != 1 {
		t.Errorf("Candidates(\"\", RS256) = %d keys, want 1", len(c))
	}
}

func TestParseRemoteSkips(t *testing.T) {
	set, err := ParseRemote([]byte(`{"keys":[{"kty":"EC","crv":"P-521","kid":"x"},{"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"},` + ecJWK + `]}`))
	if err != nil || len(set) != 1 || set[0].ID != "ec" {
		t.Fatalf("ParseRemote = %+v, %v; want the one EC key", set, err)
	}
	if _, err := ParseRemote([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)); err == nil {
		t.Error("ParseRemote of a set without usable keys: no error")
	}
}

// FuzzParse fuzzes the registration parser of JWK Sets. Whatever it
// accepts is a set of public keys with unique kids and known algorithms,
// and ParseRemote keeps every one of them.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"keys":[` + ecJWK + `]}`, `{"keys":[` + edJWK + `]}`, `{"keys":[` + rsaJWK + `]}`,
		`{"keys":[` + ecJWK + `,` + edJWK + `]}`, `{"keys":[]}`, `{"keys":null}`, `{"keys":[{"kty":"oct","k":"AA"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse(data)
		if err != nil {
			return
		}
		if len(set) == 0 || len(set) > MaxKeys {
			t.Fatalf("accepted %d keys", len(set))
		}
		seen := map[string]bool{}
		for _, k := range set {
			if seen[k.ID] || (k.ID == "" && len(set) > 1) {
				t.Fatalf("kid %q repeated or missing", k.ID)
			}
			seen[k.ID] = true
			if len(k.Algs) == 0 {
				t.Fatalf("key %q verifies no algorithm", k.ID)
			}
			switch p := k.Public.(type) {
			case *rsa.PublicKey:
				if p.N.BitLen() < minRSABits {
					t.Fatalf("RSA key of %d bits", p.N.BitLen())
				}
			case *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("key of type %T", p)
			}
		}
		remote, err := ParseRemote(data)
		if err != nil || len(remote) != len(set) {
			t.Fatalf("ParseRemote kept %d of %d keys (%v)", len(remote), len(set), err)
		}
	})
}
