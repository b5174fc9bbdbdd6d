package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// members lists the member names of the JSON object b with encoding/json,
// or reports false when b is not an object.
func members(b []byte) ([]string, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var names []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, false
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, false
		}
	}
	if _, err := d.Token(); err != nil {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return names, true
}

func TestUniqueMembers(t *testing.T) {
	tests := []struct {
		in   string
		want error // nil, or any error
	}{
		{`{}`, nil},
		{` { "a" : 1 , "b" : [1,{"a":2}] , "c":{"a":{"a":"}"}} } `, nil},
		{`{"a":"x\"y","b":null,"c":true,"d":-1.5e3}`, nil},
		{`{"a":1,"a":2}`, errSyntax},
		{`{"aud":1,"AUD":2}`, errSyntax},
		{`{"scope":1,"sc\u006fpe":2}`, errSyntax},
		{`{"\u017fub":1,"sub":2}`, errSyntax}, // ſ folds to s, as in encoding/json
		{`[]`, errNotObject},
		{`null`, errNotObject},
		{`"{}"`, errNotObject},
	}
	for _, tc := range tests {
		err := uniqueMembers([]byte(tc.in))
		if (err == nil) != (tc.want == nil) {
			t.Errorf("uniqueMembers(%s) = %v, want error %v", tc.in, err, tc.want != nil)
		}
	}
	many := []byte(`{"k0":0`)
	for i := 1; i <= maxMembers; i++ {
		many = append(many, `,"k`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":0`...)
	}
	many = append(many, '}')
	if err := uniqueMembers(many); err == nil {
		t.Errorf("uniqueMembers accepted %d members", maxMembers+1)
	}
}

// FuzzUniqueMembers checks uniqueMembers against encoding/json on valid
// JSON.
func FuzzUniqueMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"A":2}`, `{"a":{"a":1},"b":[{"b":2}]}`, `{"a\u0062":1,"ab":2}`, `[1]`, `{"a":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		err := uniqueMembers(b)
		names, ok := members(b)
		if !ok {
			if !errors.Is(err, errNotObject) {
				t.Fatalf("uniqueMembers(%q) = %v for a non-object", b, err)
			}
			return
		}
		dup := len(names) > maxMembers
		for i := range names {
			for j := range i {
				if bytes.EqualFold([]byte(names[i]), []byte(names[j])) {
					dup = true
				}
			}
		}
		if dup != (err != nil) {
			t.Fatalf("uniqueMembers(%q) = %v; names %q", b, err, names)
		}
	})
}
