package services

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

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

// CorrelationIDFrom keeps an incoming id when it is 1-128 characters of
// [A-Za-z0-9._:-] and returns a new random (version 4) UUID otherwise.
func CorrelationIDFrom(incoming string) string {
	if validCorrelationID(incoming) {
		return incoming
	}
	// An id is a reference, not a secret: the runtime's generator (ChaCha8,
	// seeded by the system) is random enough, and needs no system call.
	var u uuid.UUID
	hi, lo := rand.Uint64(), rand.Uint64() //nolint:gosec // a reference, not a secret
	binary.LittleEndian.PutUint64(u[:8], hi)
	binary.LittleEndian.PutUint64(u[8:], lo)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}

func validCorrelationID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
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
