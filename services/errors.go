// Package services holds the console's domain: its error model, the types the
// rest of the code talks about, and the interfaces storage implements.
// Sub-packages implement those interfaces (sqlite) or the domain rules
// (account). Nothing here knows about HTTP, htmx or templates.
package services

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error. The handlers map each code to one HTTP status in
// one place (handlers/errors.go); everything else only sets codes.
type Code string

// The error codes of the console.
const (
	EINVALID      Code = "invalid"      // the caller sent a value we refuse (422)
	ENOTFOUND     Code = "not_found"    // no such thing (404)
	EUNAUTHORIZED Code = "unauthorized" // no or bad credentials (401)
	EFORBIDDEN    Code = "forbidden"    // known caller, not allowed (403)
	ECONFLICT     Code = "conflict"     // the thing already exists (409)
	ERATELIMIT    Code = "rate_limited" // too many requests (429)
	EUPSTREAM     Code = "upstream"     // an outside service answered with an error (502)
	EUNAVAILABLE  Code = "unavailable"  // an outside service is switched off by its breaker (503)
	ETIMEOUT      Code = "timeout"      // an outside service did not answer in time (504)
	EINTERNAL     Code = "internal"     // our bug or our infrastructure (500)

	// Protocol errors: the request itself, before any handler reads it.
	EBADREQUEST    Code = "bad_request"            // not readable as HTTP (400)
	EMETHOD        Code = "method_not_allowed"     // a known path, another method (405, with Allow)
	ETIMEOUTCLIENT Code = "request_timeout"        // the client did not send its request in time (408)
	ETOOLARGE      Code = "too_large"              // the body is over the limit (413)
	EUNSUPPORTED   Code = "unsupported_media_type" // the body is not of a type the route reads (415)
	EHEADERS       Code = "headers_too_large"      // the request line and headers are over the limit (431)
)

// Error is an application error: a code, a message fit for the user, and,
// when the error is about one input, the field it is about.
type Error struct {
	Code    Code
	Message string
	// Field names the input the error is about (validation errors).
	Field string
	// RetryAfter tells the caller when trying again may succeed (rate limits,
	// open breakers). Zero when unknown.
	RetryAfter time.Duration
	// Err is the underlying cause. It is logged, never shown to users.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted user-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a validation error about one input field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected error. Users see "Internal error."; the cause is logged.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "Internal error.", Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none and
// "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of err that a user may see. Errors without
// a code are internal and their text is never shown.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "Internal error."
}
