package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/ava/console/services"
)

// strictBody describes a JSON object body of the API. Every JSON body is
// read through it: one object, whose members are among the fields, each
// once, spelt exactly (names are case-sensitive: "Value" is not "value",
// although encoding/json would take it), and nothing after it.
type strictBody struct {
	// fields are the members allowed.
	fields []string
	// first is the field a body that is not an object is about.
	first string
	// notObject is the message for a body that is not one JSON object.
	notObject string
	// takes says what the body holds; it ends an unknown member's message.
	takes string
}

// decode returns the body's members, undecoded. Anything else is EINVALID
// naming the member (first, when the body is not an object).
func (s strictBody) decode(body []byte) (map[string]json.RawMessage, error) {
	notObject := services.FieldError(s.first, "%s", s.notObject)
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, isName := tok.(string)
		if err != nil || !isName {
			return nil, notObject
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		if !slices.Contains(s.fields, name) {
			return nil, s.unknown(name)
		}
		if _, twice := out[name]; twice {
			return nil, services.FieldError(name, "%q is given twice: send each member once.", name)
		}
		out[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, notObject // something after the object
	}
	return out, nil
}

func (s strictBody) unknown(name string) error {
	for _, f := range s.fields {
		if strings.EqualFold(f, name) {
			return services.FieldError(name, "Unknown field %q: member names are case-sensitive (%q is not %q); %s", name, name, f, s.takes)
		}
	}
	return services.FieldError(name, "Unknown field %q: %s", name, s.takes)
}

// decodeStrict decodes a JSON object into v (a struct with json tags),
// refusing unknown or differently-cased members and anything that is not
// an object of the right types, naming the member.
func decodeStrict(body []byte, v any, first, shape string) error {
	var fields []string
	b, _ := json.Marshal(v)
	var members map[string]any
	_ = json.Unmarshal(b, &members)
	for k := range members {
		fields = append(fields, k)
	}
	s := strictBody{
		fields: fields, first: first,
		notObject: "The body must be a JSON object: " + shape + " (" + first + " first).",
		takes:     "the body is " + shape + ".",
	}
	if _, err := s.decode(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return services.FieldError(te.Field, "%s must be a %s.", te.Field, te.Type.String())
		}
		return services.FieldError(first, "The body must be a JSON object: %s.", shape)
	}
	return nil
}
