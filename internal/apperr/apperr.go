// Package apperr defines the domain's typed errors. Domain packages return
// them (wrapped with %w as needed); the HTTP layer maps each Kind to a status
// code in one place. Messages must never contain a secret value.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the transport.
type Kind int

// The kinds of domain error.
const (
	KindInternal Kind = iota
	KindBadRequest
	KindUnauthorized
	KindForbidden
	KindNotFound
	KindConflict
	KindValidation
	KindUnavailable
	KindTooManyRequests
	KindBadGateway
)

// FieldError is one invalid input field. Loc is its path, e.g.
// ["body", "auth_fields", "refresh_token"].
type FieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// Error is a domain error with a message safe to show to the caller.
type Error struct {
	Kind       Kind
	Msg        string
	Fields     []FieldError
	RetryAfter time.Duration
	Err        error // cause, for logs; never shown to the caller
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// NotFound reports a missing (or another tenant's) object.
func NotFound(format string, a ...any) *Error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, a...)}
}

// BadRequest reports a request that cannot be served as asked.
func BadRequest(format string, a ...any) *Error {
	return &Error{Kind: KindBadRequest, Msg: fmt.Sprintf(format, a...)}
}

// Conflict reports a clash with the current state.
func Conflict(format string, a ...any) *Error {
	return &Error{Kind: KindConflict, Msg: fmt.Sprintf(format, a...)}
}

// Unauthorized reports missing or bad credentials of the caller.
func Unauthorized(msg string) *Error { return &Error{Kind: KindUnauthorized, Msg: msg} }

// Forbidden reports a caller without the right to act.
func Forbidden(msg string) *Error { return &Error{Kind: KindForbidden, Msg: msg} }

// Invalid reports one or more invalid fields (HTTP 422).
func Invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindValidation, Msg: "validation failed", Fields: fields}
}

// Field builds a FieldError.
func Field(typ, msg string, loc ...any) FieldError {
	return FieldError{Loc: loc, Msg: msg, Type: typ}
}

// As extracts an *Error from err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
