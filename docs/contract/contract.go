// Package contract checks HTTP exchanges with the console's JSON API against
// its OpenAPI document (docs/openapi.json, embedded as docs.OpenAPI).
//
// Handler tests and browser tests run every JSON answer they get through a
// Validator, so the document and the server cannot drift apart unnoticed:
//
//	v, err := contract.New()
//	...
//	if err := v.Check(req, resp.StatusCode, resp.Header, body); err != nil {
//		t.Error(err)
//	}
//
// Check fails when the answer's status is not documented for the operation,
// when a documented header is missing or malformed, when the body does not
// match the schema of its content type, when a problem's correlation_id or
// status disagrees with the answer, and when the request's path and method are
// not in the document at all (an undocumented route), except for a 404
// problem, which is how the console answers addresses it does not know.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ava/console/docs"
)

// ProblemMediaType is the media type of RFC 9457 problem details.
const ProblemMediaType = "application/problem+json"

// correlationHeader is the header that carries a request's correlation id.
const correlationHeader = "X-Correlation-ID"

// Validator checks requests and answers against one OpenAPI document. It is
// safe for concurrent use.
type Validator struct {
	doc      *openapi3.T
	router   routers.Router
	notFound *openapi3.ResponseRef
	// methodNotAllowed is components.responses.MethodNotAllowed, when the
	// document has it.
	methodNotAllowed *openapi3.ResponseRef
	options          *openapi3filter.Options
}

// New loads and validates the console's OpenAPI document (docs.OpenAPI).
func New() (*Validator, error) {
	return Load(docs.OpenAPI)
}

// Load loads and validates the given OpenAPI document. It must define
// components.responses.NotFound, the answer to unknown addresses.
func Load(document []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("contract: loading the OpenAPI document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("contract: the OpenAPI document is version %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("contract: the OpenAPI document is invalid: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("contract: routing the OpenAPI document: %w", err)
	}
	var notFound *openapi3.ResponseRef
	if doc.Components != nil {
		notFound = doc.Components.Responses["NotFound"]
	}
	if notFound == nil || notFound.Value == nil {
		return nil, errors.New("contract: the OpenAPI document has no components.responses.NotFound")
	}
	return &Validator{
		doc:              doc,
		router:           router,
		notFound:         notFound,
		methodNotAllowed: doc.Components.Responses["MethodNotAllowed"],
		options: &openapi3filter.Options{
			// Credentials are the server's business: the checker looks at
			// shapes, not at whether a token is valid.
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			// An answer with a status the operation does not list is a
			// contract violation, not something to wave through.
			IncludeResponseStatus: true,
			MultiError:            true,
			SkipSettingDefaults:   true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidator("email",
					openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
			},
		},
	}, nil
}

// Doc returns the loaded document (read-only: do not modify it).
func (v *Validator) Doc() *openapi3.T { return v.doc }

// CheckResponse is Check for an *http.Response whose body the caller has
// already read into body; resp.Request must be set (net/http and fiber's
// app.Test set it).
func (v *Validator) CheckResponse(resp *http.Response, body []byte) error {
	if resp.Request == nil {
		return errors.New("contract: the response has no request")
	}
	return v.Check(resp.Request, resp.StatusCode, resp.Header, body)
}

// Check checks one exchange: the request that was sent and the status,
// headers and body that came back. Header names may be in any case.
//
// The request's body, if any, is validated when it can still be read: when
// req.GetBody is set (http.NewRequest sets it for in-memory bodies) or
// req.Body has not been consumed. When the server refused the request with a
// 4xx, a request that breaks the document is expected (tests send bad input
// on purpose) and only the answer is checked; when it accepted it, the
// document and the server disagree, and that is an error.
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	if req == nil || req.URL == nil {
		return errors.New("contract: no request")
	}
	// Canonical keys, whoever built the map (Playwright reports lowercase names).
	canonical := make(http.Header, len(header))
	for k, vs := range header {
		for _, v := range vs {
			canonical.Add(k, v)
		}
	}
	header = canonical
	what := req.Method + " " + req.URL.Path
	ctx := req.Context()
	if ctx == nil {
		ctx = context.Background()
	}

	route, pathParams, err := v.router.FindRoute(req)
	if err != nil {
		var routeErr *routers.RouteError
		if !errors.As(err, &routeErr) {
			return fmt.Errorf("contract: %s: %w", what, err)
		}
		fallback := v.notFound
		if status == http.StatusMethodNotAllowed && v.methodNotAllowed != nil {
			fallback = v.methodNotAllowed
		} else if status != http.StatusNotFound {
			return fmt.Errorf("contract: %s is not in the OpenAPI document (%s), yet it answered %d: document it in docs/openapi.json",
				what, routeErr.Reason, status)
		}
		// Unknown addresses answer a 404 problem, known ones with another
		// method a 405: check it against components.responses.NotFound or
		// MethodNotAllowed.
		route = &routers.Route{
			Spec:   v.doc,
			Path:   req.URL.Path,
			Method: req.Method,
			Operation: &openapi3.Operation{
				Responses: openapi3.NewResponses(openapi3.WithStatus(status, fallback)),
			},
		}
		return v.checkResponse(ctx, what, &openapi3filter.RequestValidationInput{
			Request: req, Route: route, Options: v.options,
		}, status, header, body)
	}

	reqInput, reqErr := v.checkRequest(ctx, req, route, pathParams)
	if reqErr != nil && (status < 400 || status >= 500) {
		return fmt.Errorf("contract: %s: the request does not match the document, yet it answered %d: %w", what, status, reqErr)
	}
	return v.checkResponse(ctx, what, reqInput, status, header, body)
}

// checkRequest validates the request (parameters, and the body when it can
// be read) and returns the input that response validation needs.
func (v *Validator) checkRequest(ctx context.Context, req *http.Request, route *routers.Route, pathParams map[string]string) (*openapi3filter.RequestValidationInput, error) {
	clone := req.Clone(ctx)
	options := *v.options
	data, readable, err := requestBody(req)
	if err != nil {
		return nil, err
	}
	if readable {
		clone.Body = io.NopCloser(bytes.NewReader(data))
		clone.ContentLength = int64(len(data))
	} else {
		clone.Body = http.NoBody
		options.ExcludeRequestBody = true
	}
	input := &openapi3filter.RequestValidationInput{
		Request: clone, PathParams: pathParams, Route: route, Options: &options,
	}
	if err := openapi3filter.ValidateRequest(ctx, input); err != nil {
		return input, err
	}
	return input, nil
}

// requestBody returns the request's body without consuming it for the
// caller, and whether it could be read at all.
func requestBody(req *http.Request) ([]byte, bool, error) {
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, false, fmt.Errorf("contract: rereading the request body: %w", err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return nil, false, fmt.Errorf("contract: rereading the request body: %w", err)
		}
		return data, true, nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, true, nil
	}
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, false, fmt.Errorf("contract: reading the request body: %w", err)
	}
	// Give the caller its body back.
	req.Body = io.NopCloser(bytes.NewReader(data))
	if len(data) == 0 && req.ContentLength > 0 {
		// Sent already (e.g. by app.Test): the body is gone, so it cannot be checked.
		return nil, false, nil
	}
	return data, true, nil
}

// checkResponse validates the answer against the operation and checks what
// a schema cannot say about problems.
func (v *Validator) checkResponse(ctx context.Context, what string, reqInput *openapi3filter.RequestValidationInput,
	status int, header http.Header, body []byte) error {
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 status,
		Header:                 header,
		Options:                v.options,
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
		return fmt.Errorf("contract: %s answered %d, which does not match the document: %w", what, status, err)
	}
	if err := checkProblem(status, header, body); err != nil {
		return fmt.Errorf("contract: %s answered %d: %w", what, status, err)
	}
	return nil
}

// checkProblem checks the invariants of problem answers that JSON Schema
// cannot express: error statuses are problems, a problem's status is the
// answer's, and its correlation_id is the X-Correlation-ID header.
func checkProblem(status int, header http.Header, body []byte) error {
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	isProblem := mediaType == ProblemMediaType
	if status >= 400 && !isProblem {
		return fmt.Errorf("an error answer must be %s, got Content-Type %q", ProblemMediaType, header.Get("Content-Type"))
	}
	if !isProblem {
		return nil
	}
	var p struct {
		Status        int    `json:"status"`
		CorrelationID string `json:"correlation_id"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("the problem is not JSON: %w", err)
	}
	if p.Status != status {
		return fmt.Errorf("the problem's status is %d, the answer's %d", p.Status, status)
	}
	if got := header.Get(correlationHeader); p.CorrelationID != got {
		return fmt.Errorf("the problem's correlation_id %q differs from the %s header %q", p.CorrelationID, correlationHeader, got)
	}
	return nil
}
