package grant

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
)

// Header values of every token response, shared by all of them as
// internal/server shares its documents' (net/http only reads them, and
// Header.Add, appending to a full slice, makes a new one).
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
)

// tokenBuffers holds the buffers writeToken builds responses in. Write does
// not keep them (io.Writer).
var tokenBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer bounds the buffers put back in tokenBuffers, so that one
// huge scope does not stay in memory.
const maxPooledBuffer = 16 << 10

// noStoreJSON sets the headers of every JSON answer of the client
// endpoints (RFC 6749 §5.1: no caching) and returns the header map.
func noStoreJSON(w http.ResponseWriter) http.Header {
	hd := w.Header()
	hd["Content-Type"] = hdrJSON
	hd["Cache-Control"] = hdrNoStore
	hd["Pragma"] = hdrNoCache
	return hd
}

// writeToken writes the RFC 6749 §5.1 success response, with the headers of
// noStoreJSON and Content-Length. The body is the bytes that
// json.NewEncoder(w).Encode(resp) writes, newline included, built without
// reflection.
func writeToken(w http.ResponseWriter, resp *tokenResponse) {
	bp := tokenBuffers.Get().(*[]byte)
	b := appendToken((*bp)[:0], resp)

	hd := noStoreJSON(w)
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)

	if cap(b) <= maxPooledBuffer {
		*bp = b
		tokenBuffers.Put(bp)
	}
}

// appendToken appends the JSON of resp, newline included, as
// json.NewEncoder(w).Encode(resp) writes it.
func appendToken(b []byte, resp *tokenResponse) []byte {
	b = append(b, `{"access_token":`...)
	b = jsonenc.AppendString(b, resp.AccessToken)
	b = append(b, `,"token_type":`...)
	b = jsonenc.AppendString(b, resp.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, resp.ExpiresIn, 10)
	if resp.RefreshToken != "" {
		b = append(b, `,"refresh_token":`...)
		b = jsonenc.AppendString(b, resp.RefreshToken)
	}
	if resp.Scope != "" {
		b = append(b, `,"scope":`...)
		b = jsonenc.AppendString(b, resp.Scope)
	}
	return append(b, "}\n"...)
}
