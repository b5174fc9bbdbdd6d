package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/issuer-oauth/issuer/internal/adminapi"
)

// explain turns a failed admin API call into one sentence that says what
// to fix: which flag or variable to check, whether the server runs.
func (a *adminCLI) explain(ctx context.Context, err error) error {
	if ws, ok := asWrongServer(err); ok {
		return ws // a whole sentence already
	}
	var apiErr *adminapi.Error
	switch {
	case errors.Is(err, adminapi.ErrNoToken):
		return errors.New("no admin token: pass --admin-token or set ISSUER_ADMIN_TOKEN")
	case errors.Is(err, adminapi.ErrTokenControl):
		return errors.New("the admin token contains control characters: check --admin-token or ISSUER_ADMIN_TOKEN")
	case errors.Is(err, adminapi.ErrNotJSON):
		return fmt.Errorf("%v: check that --url or ISSUER_URL points at the issuer", err)
	case errors.Is(err, adminapi.ErrUnknownFormat):
		return fmt.Errorf("%v: check that the CLI and the server are the same version", err)
	case errors.As(err, &apiErr):
		return a.explainAnswer(apiErr)
	case errors.As(err, new(*url.Error)), errors.As(err, new(net.Error)), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return a.transportError(ctx, err)
	}
	return err
}

// explainAnswer adds a hint to an error answer of the admin API when the
// CLI knows what to do about it.
func (a *adminCLI) explainAnswer(e *adminapi.Error) error {
	var hint string
	switch {
	case e.Location != "":
		hint = "pass the issuer's base URL with --url or ISSUER_URL"
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		hint = "the admin token was refused: pass the server's ISSUER_ADMIN_TOKEN with --admin-token or ISSUER_ADMIN_TOKEN"
	case e.Status == http.StatusNotFound && e.Code == "":
		hint = fmt.Sprintf("no admin API at %s: check --url or ISSUER_URL, and that the server runs with ISSUER_ADMIN_TOKEN set", a.where)
	case e.Code == "":
		hint = fmt.Sprintf("unexpected answer from %s: check that --url or ISSUER_URL points at the issuer", a.where)
	}
	if hint == "" {
		return e
	}
	return fmt.Errorf("%w (%s)", e, hint)
}

// transportError explains a failed HTTP exchange: nothing or no timely
// answer at the URL.
func (a *adminCLI) transportError(ctx context.Context, err error) error {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		within := "in time"
		if a.timeout > 0 {
			within = "within " + a.timeout.String()
		}
		return fmt.Errorf("the issuer at %s did not answer %s: check that it is running and reachable, or raise --timeout", a.where, within)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return errors.New("canceled before the issuer answered")
	}
	reason := err.Error()
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		reason = urlErr.Err.Error()
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.As(err, &dnsErr):
		reason = "cannot resolve host " + dnsErr.Name
	}
	return fmt.Errorf("the issuer at %s is not reachable (%s): is it running? Start it with \"issuer serve\", or pass its URL with --url or ISSUER_URL", a.where, clean(reason))
}
