package services

import "net/http"

// CorrelationTransport sends the correlation id of each request's context as
// the X-Correlation-ID header. Every upstream client is built on it, so
// upstream calls carry the id of the console request that caused them.
type CorrelationTransport struct {
	// Base performs the request; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper. It clones the request before
// setting the header, as RoundTrippers must not modify their input.
func (t CorrelationTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if id := CorrelationID(req.Context()); id != "" && req.Header.Get(CorrelationHeader) == "" {
		req = req.Clone(req.Context())
		req.Header.Set(CorrelationHeader, id)
	}
	return base.RoundTrip(req)
}
