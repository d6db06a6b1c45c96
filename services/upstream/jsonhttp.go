package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/ava/console/services"
)

// NewJSONRequest is a request to a provider's JSON API: body (when not
// nil) encoded as JSON, the Accept and Content-Type headers that go with
// it, and the context's correlation id. The caller adds its credentials.
func NewJSONRequest(ctx context.Context, method, url string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Set here, the correlation transport need not copy the request to
	// add it.
	if id := services.CorrelationID(ctx); id != "" {
		req.Header.Set(services.CorrelationHeader, id)
	}
	return req, nil
}

// ReadAnswer reads up to limit bytes of an answer's body, then drains a
// little more and closes it, so the connection goes back to the pool.
func ReadAnswer(resp *http.Response, limit int64) ([]byte, error) {
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}
