package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is a minimal keep-alive HTTP/1.1 client on one TCP connection: it
// writes a prepared request and reads the response (Content-Length or
// chunked). It costs the load generator a fraction of net/http's client,
// which matters when the load generator shares the server's two cores. It
// redials after any error or a "Connection: close".
type conn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	body    []byte
	dials   int
}

func newConn(addr string, timeout time.Duration) *conn {
	return &conn{addr: addr, timeout: timeout, body: make([]byte, 0, 4096)}
}

func (k *conn) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// do sends req (a complete HTTP/1.1 request) and returns the status and the
// body, valid until the next call.
func (k *conn) do(req []byte) (int, []byte, error) {
	if k.c == nil {
		c, err := net.DialTimeout("tcp", k.addr, k.timeout)
		if err != nil {
			return 0, nil, err
		}
		k.c, k.dials = c, k.dials+1
		if k.br == nil {
			k.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			k.br.Reset(c)
		}
	}
	if err := k.c.SetDeadline(time.Now().Add(k.timeout)); err != nil {
		k.close()
		return 0, nil, err
	}
	if _, err := k.c.Write(req); err != nil {
		k.close()
		return 0, nil, err
	}
	status, body, keep, err := k.read()
	if err != nil || !keep {
		k.close()
	}
	return status, body, err
}

var (
	crlf             = []byte("\r\n")
	hContentLength   = []byte("content-length")
	hTransferEncode  = []byte("transfer-encoding")
	hConnection      = []byte("connection")
	errMalformedResp = errors.New("malformed HTTP response")
)

func (k *conn) read() (status int, body []byte, keep bool, err error) {
	line, err := k.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errMalformedResp
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errMalformedResp
	}
	keep = true
	length, chunked := -1, false
	for {
		line, err = k.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, false, errMalformedResp
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hContentLength):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, errMalformedResp
			}
		case bytes.EqualFold(name, hTransferEncode):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, hConnection):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	k.body = k.body[:0]
	switch {
	case status == 304 || status == 204 || (status >= 100 && status < 200):
	case chunked:
		if err := k.readChunked(); err != nil {
			return 0, nil, false, err
		}
	case length >= 0:
		if length > 1<<20 {
			return 0, nil, false, fmt.Errorf("response body of %d bytes", length)
		}
		k.body = grow(k.body, length)
		if _, err := io.ReadFull(k.br, k.body); err != nil {
			return 0, nil, false, err
		}
	default: // body until close
		b, err := io.ReadAll(io.LimitReader(k.br, 1<<20))
		if err != nil {
			return 0, nil, false, err
		}
		k.body, keep = append(k.body, b...), false
	}
	return status, k.body, keep, nil
}

func (k *conn) readChunked() error {
	for {
		line, err := k.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 32)
		if err != nil || n < 0 || len(k.body)+int(n) > 1<<20 {
			return errMalformedResp
		}
		if n == 0 {
			for { // trailers up to the empty line
				line, err := k.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		start := len(k.body)
		k.body = grow(k.body, start+int(n))
		if _, err := io.ReadFull(k.br, k.body[start:]); err != nil {
			return err
		}
		var end [2]byte
		if _, err := io.ReadFull(k.br, end[:]); err != nil || !bytes.Equal(end[:], crlf) {
			return errMalformedResp
		}
	}
}

// grow returns b resized to n bytes, keeping its contents.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// request builds an HTTP/1.1 request.
func request(method, host, path string, headers [][2]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: issuer-bench\r\n", method, path, host)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if method == "POST" {
		fmt.Fprintf(&b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// jsonString returns the value of the first "key":"value" in a JSON
// document the issuer wrote (no escapes in tokens), without decoding it all.
func jsonString(doc []byte, key string) (string, bool) {
	pat := []byte(`"` + key + `":"`)
	i := bytes.Index(doc, pat)
	if i < 0 {
		return "", false
	}
	rest := doc[i+len(pat):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}
