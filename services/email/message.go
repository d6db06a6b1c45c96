// Package email sends an account's email through its provider: Resend's
// HTTP API (resend.go) or the account's own SMTP server (smtp.go), each
// guarded by the upstream package's breaker and timeout.
package email

// Message is one email to send.
type Message struct {
	From, To, Subject, Text string
	// CorrelationID goes as the X-Correlation-ID header of the upstream call
	// (Resend) and of the message itself (SMTP).
	CorrelationID string
	// IdempotencyKey is sent to Resend as Idempotency-Key (fresh per send;
	// the caller makes it).
	IdempotencyKey string
}

// Sent is the provider's answer: its id of the message.
type Sent struct{ ID string }
