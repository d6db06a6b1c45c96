package services

import (
	"context"
	"regexp"

	"github.com/google/uuid"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	accountKey
)

// CorrelationHeader is the header that carries a request's correlation id,
// in and out, to browsers and to upstreams alike.
const CorrelationHeader = "X-Correlation-ID"

var validCorrelationID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// CorrelationIDFrom keeps an incoming id when it is 1-128 characters of
// [A-Za-z0-9._:-] and returns a new UUID otherwise.
func CorrelationIDFrom(incoming string) string {
	if validCorrelationID.MatchString(incoming) {
		return incoming
	}
	return uuid.NewString()
}

// WithCorrelationID returns a context carrying id. Log records written with
// it and upstream calls made with it carry the id without anyone passing it.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// WithAccountID returns a context that names the account a request acts for.
func WithAccountID(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, accountKey, id)
}

// AccountID returns the account id carried by ctx and whether there is one.
func AccountID(ctx context.Context) (int64, bool) {
	id, ok := ctx.Value(accountKey).(int64)
	return id, ok
}
