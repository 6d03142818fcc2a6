package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// decodeJSON strictly decodes the request body into dst, a pointer to a
// struct: the body must be one JSON value with no unknown fields, no values
// of the wrong type and nothing after it. Problems become 400 errors that
// name the field; a body over the limit becomes 413 (see errorResponse).
func decodeJSON(r *http.Request, dst any) error {
	if r.Body == nil {
		return errEmptyBody
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err == nil:
		return &httpError{status: http.StatusBadRequest, msg: "request body has data after the JSON object: send exactly one JSON object"}
	default:
		return decodeError(err)
	}
	return checkKeys(data, dst)
}

// checkKeys catches what encoding/json forgives at the top level of an
// object: keys that match a field only case-insensitively ("Percent") and
// keys given twice, where the last would silently win.
func checkKeys(data []byte, dst any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		known[name] = true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // already decoded successfully, so not an object: e.g. null
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeError(err)
		}
		key, _ := tok.(string)
		if !known[key] {
			return &httpError{status: http.StatusBadRequest, field: key, msg: fmt.Sprintf("unknown field %q (field names are case-sensitive)", key)}
		}
		if seen[key] {
			return &httpError{status: http.StatusBadRequest, field: key, msg: fmt.Sprintf("field %q appears more than once", key)}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return decodeError(err)
		}
	}
	return nil
}

var errEmptyBody = &httpError{status: http.StatusBadRequest, msg: "request body is empty: send a JSON object"}

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return mbe
	case errors.Is(err, io.EOF):
		return errEmptyBody
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &httpError{status: http.StatusBadRequest, msg: "request body is truncated JSON"}
	case errors.As(err, &syn):
		return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("request body is not valid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("request body must be a JSON object, not %s", article(typ.Value))}
		}
		return &httpError{status: http.StatusBadRequest, field: typ.Field,
			msg: fmt.Sprintf("field %q must be %s, not %s", typ.Field, article(jsonKind(typ.Type)), article(typ.Value))}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the message format has
		// been stable since DisallowUnknownFields was added (Go 1.10).
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &httpError{status: http.StatusBadRequest, field: name, msg: fmt.Sprintf("unknown field %q", name)}
	default:
		return &httpError{status: http.StatusBadRequest, msg: "cannot decode the request body: " + err.Error()}
	}
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// article prefixes a JSON type name ("number", "string") with "a"/"an".
func article(kind string) string {
	switch {
	case kind == "":
		return "a value of another type"
	case strings.ContainsAny(kind[:1], "aeiou"):
		return "an " + kind
	default:
		return "a " + kind
	}
}
