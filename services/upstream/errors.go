package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/ava/console/services"
)

// Error turns the error of a call to an upstream (by its display name,
// "Vapi") into the console's error: an open breaker is EUNAVAILABLE with
// its Retry-After, a timeout ETIMEOUT, anything else on the way EUPSTREAM.
// HTTP answers with an error status are the client's to translate (it can
// read the provider's message); this is for calls that got no answer.
func Error(display string, timeout time.Duration, err error) error {
	var open *OpenError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &open):
		secs := int(math.Ceil(open.RetryAfter.Seconds()))
		return &services.Error{
			Code:       services.EUNAVAILABLE,
			Message:    fmt.Sprintf("%s has been failing, so calls to it are paused. Try again in %s.", display, seconds(secs)),
			RetryAfter: open.RetryAfter,
			Err:        err,
		}
	case errors.Is(err, context.Canceled):
		return &services.Error{Code: services.EUPSTREAM, Message: "The request was canceled.", Err: err}
	case isTimeoutErr(err):
		return &services.Error{
			Code:    services.ETIMEOUT,
			Message: fmt.Sprintf("%s did not answer within %s. Try again in a moment.", display, timeout),
			Err:     err,
		}
	default:
		return &services.Error{
			Code:    services.EUPSTREAM,
			Message: fmt.Sprintf("Could not reach %s (the connection failed). Try again in a moment.", display),
			Err:     err,
		}
	}
}

func isTimeoutErr(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// StatusError is the console's error for an HTTP answer with an error
// status from an upstream, carrying the provider's own message. 429 and 5xx
// tell the user to retry later; other statuses are the upstream refusing
// our request (502). cause is kept for the log.
func StatusError(display string, status int, providerMessage string, retryAfter time.Duration, cause error) error {
	if providerMessage == "" {
		providerMessage = fmt.Sprintf("HTTP %d", status)
	}
	switch {
	case status == 429:
		wait := "in a moment"
		if retryAfter > 0 {
			wait = "in " + seconds(int(math.Ceil(retryAfter.Seconds())))
		}
		// The provider's limit on this account's key: our 429, like our own
		// limits, with the provider's Retry-After.
		return &services.Error{
			Code:       services.ERATELIMIT,
			Message:    fmt.Sprintf("%s is rate limiting us (%s). Try again %s.", display, providerMessage, wait),
			RetryAfter: retryAfter,
			Err:        cause,
		}
	case status >= 500:
		return &services.Error{
			Code:    services.EUPSTREAM,
			Message: fmt.Sprintf("%s is having trouble (%s). Try again in a moment.", display, providerMessage),
			Err:     cause,
		}
	default:
		return &services.Error{Code: services.EUPSTREAM, Message: fmt.Sprintf("%s refused the request: %s", display, providerMessage), Err: cause}
	}
}

// seconds says n seconds in words ("1 second", "30 seconds").
func seconds(n int) string {
	if n == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", n)
}
