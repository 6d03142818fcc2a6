package stats

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorsPath is the reference file (testdata/README.md says where it comes
// from), relative to this package.
var vectorsPath = filepath.Join("..", "..", "..", "testdata", "stats-vectors.json")

// vector is one reference case.
type vector struct {
	Method  string          `json:"method"`
	Case    string          `json:"case"`
	Inputs  json.RawMessage `json:"inputs"`
	Params  json.RawMessage `json:"params"`
	Outputs json.RawMessage `json:"outputs"`
	Notes   string          `json:"notes"`
}

// loadVectors returns the vectors of one method; it fails the test when the
// file is missing (it is part of the repository) or has none.
func loadVectors(t *testing.T, method string) []vector {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read reference vectors: %v (expected at %s)", err, vectorsPath)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("decode reference vectors: %v", err)
	}
	var out []vector
	for _, v := range file.Vectors {
		if v.Method == method {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no reference vectors for method %q", method)
	}
	return out
}

// num decodes a JSON number that may be given as "NaN", "Infinity",
// "-Infinity" or null (NaN).
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	switch s {
	case "NaN", "null":
		*n = num(math.NaN())
	case "Infinity":
		*n = num(math.Inf(1))
	case "-Infinity":
		*n = num(math.Inf(-1))
	default:
		var f float64
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return err
		}
		*n = num(f)
	}
	return nil
}

// closeRel reports whether got is within rel relative tolerance (or abs
// absolute, for values near zero) of want; NaN equals NaN, infinities must match.
func closeRel(got, want, rel, abs float64) bool {
	switch {
	case math.IsNaN(want):
		return math.IsNaN(got)
	case math.IsInf(want, 0):
		return got == want
	}
	d := math.Abs(got - want)
	return d <= abs || d <= rel*math.Abs(want)
}
