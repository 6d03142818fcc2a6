package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// decodeJSON strictly decodes the request body into dst, a pointer to a
// struct: the body must be one JSON value with no unknown fields (at any
// depth, with exact case), no field given twice, no values of the wrong
// type and nothing after it. Problems become 400 errors that name the field
// by its path ("spec.strategy.canary.steps[2].setWeight"); a body over the
// limit becomes 413 (see errorResponse).
func decodeJSON(r *http.Request, dst any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeBytes(data, dst)
}

// decodeOptionalJSON is decodeJSON for endpoints whose body may be left
// out: an empty (or all-space) body leaves dst as it is.
func decodeOptionalJSON(r *http.Request, dst any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeBytes(data, dst)
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, decodeError(err)
	}
	return data, nil
}

func decodeBytes(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return decodeError(err)
		}
		// A well-formed body that does not fit dst: find the path of the
		// first problem, which encoding/json does not always give.
		if perr := checkTree(data, reflect.TypeOf(dst)); perr != nil {
			return perr
		}
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
	return checkTree(data, reflect.TypeOf(dst))
}

// checkTree walks the JSON document data along the Go type t and reports
// the first problem with its field path. It catches what encoding/json
// forgives (keys that match a field only case-insensitively, keys given
// twice, where the last would silently win) and names the path of what it
// reports without one (an unknown nested field, a bad duration). data must
// be syntactically valid JSON.
func checkTree(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walk(dec, t, "")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walk(dec *json.Decoder, t reflect.Type, p spec.FieldPath) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type decodes itself (spec.Duration, time.Time): let it judge.
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return decodeError(err)
		}
		if string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			return fieldError(p, "field %q: %v", p, err)
		}
		return nil
	}
	tok, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	if tok == nil {
		return nil // null leaves any field as it is
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return mismatch(p, t, tok)
		}
		fields := jsonFields(t)
		return walkObject(dec, p, func(key string) (reflect.Type, spec.FieldPath, error) {
			if ft, ok := fields[key]; ok {
				return ft, p.Child(key), nil
			}
			return nil, "", unknownField(p.Child(key), key, fields)
		})
	case reflect.Map:
		if tok != json.Delim('{') {
			return mismatch(p, t, tok)
		}
		return walkObject(dec, p, func(key string) (reflect.Type, spec.FieldPath, error) {
			return t.Elem(), p.Key(key), nil
		})
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return mismatch(p, t, tok)
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, t.Elem(), p.Index(i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	case reflect.Interface:
		return skipRest(dec, tok)
	default:
		return walkScalar(t, tok, p)
	}
}

// walkScalar checks a string, boolean or number token against t.
func walkScalar(t reflect.Type, tok json.Token, p spec.FieldPath) error {
	switch t.Kind() {
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return mismatch(p, t, tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return mismatch(p, t, tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(p, t, tok)
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fieldError(p, "field %q must be a whole number, not %s", p, n)
		}
		if err != nil || reflect.Zero(t).OverflowInt(v) {
			return fieldError(p, "field %q is out of range: %s", p, n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(p, t, tok)
		}
		v, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fieldError(p, "field %q must be a whole number from 0, not %s", p, n)
		}
		if err != nil || reflect.Zero(t).OverflowUint(v) {
			return fieldError(p, "field %q is out of range: %s", p, n)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return mismatch(p, t, tok)
		}
		if v, err := strconv.ParseFloat(string(n), 64); err != nil || reflect.Zero(t).OverflowFloat(v) {
			return fieldError(p, "field %q is out of range: %s", p, n)
		}
	}
	return nil
}

// walkObject walks the members of an object whose '{' has been read; field
// gives the type and path of a key, or an error for an unknown one.
func walkObject(dec *json.Decoder, p spec.FieldPath, field func(key string) (reflect.Type, spec.FieldPath, error)) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeError(err)
		}
		key, _ := tok.(string)
		ft, fp, err := field(key)
		if err != nil {
			return err
		}
		if seen[key] {
			return fieldError(fp, "field %q appears more than once", fp)
		}
		seen[key] = true
		if err := walk(dec, ft, fp); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

// skipRest consumes the rest of a value whose first token was tok.
func skipRest(dec *json.Decoder, tok json.Token) error {
	depth := 0
	for {
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
		var err error
		if tok, err = dec.Token(); err != nil {
			return decodeError(err)
		}
	}
}

// jsonFields maps the JSON names of t's exported fields (including those
// of embedded structs without a name of their own) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				maps.Copy(out, jsonFields(ft))
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func unknownField(p spec.FieldPath, key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fieldError(p, "unknown field %q: did you mean %q? (field names are case-sensitive)", p, name)
		}
	}
	return fieldError(p, "unknown field %q", p)
}

func mismatch(p spec.FieldPath, t reflect.Type, tok json.Token) error {
	got := tokenKind(tok)
	if p == "" {
		return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("request body must be a JSON %s, not %s", jsonKind(t), article(got))}
	}
	return fieldError(p, "field %q must be %s, not %s", p, article(jsonKind(t)), article(got))
}

func tokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	default:
		return ""
	}
}

func fieldError(p spec.FieldPath, format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, field: p.String(), msg: fmt.Sprintf(format, args...)}
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
