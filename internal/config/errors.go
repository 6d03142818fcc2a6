package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file, at a position and a field
// path. Line and Column are 1-based; 0 means unknown (a file that cannot be
// read, a YAML syntax error that only reports its line).
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the field path such as spec.strategy.canary.steps[2].setWeight;
	// empty for problems of the file or the document as a whole.
	Path string
	Msg  string
}

// Error formats the problem the way compilers do, so editors can jump to it:
// "file:line:col: path: message".
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Warning formats e as a warning: "file:line:col: warning: path: message".
func (e Error) Warning() string {
	w := e
	w.Path = ""
	w.Msg = "warning: " + joinPath(e.Path, e.Msg)
	return w.Error()
}

func joinPath(path, msg string) string {
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// Warnings formats every warning, one per line.
func (es Errors) Warnings() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Warning()
	}
	return strings.Join(lines, "\n")
}

// Errors is every problem found, in file order and then by position. Its
// Error is one line per problem.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// err returns nil for no problems, so a nil Errors never becomes a non-nil
// error interface.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// sorted orders problems by file (in the order files were given), then by
// position, and drops exact duplicates, which aliases can produce when one
// anchored node is used twice.
func (es Errors) sorted() Errors {
	fileOrder := map[string]int{}
	for _, e := range es {
		if _, ok := fileOrder[e.File]; !ok {
			fileOrder[e.File] = len(fileOrder)
		}
	}
	out := append(Errors(nil), es...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if fa, fb := fileOrder[a.File], fileOrder[b.File]; fa != fb {
			return fa < fb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := map[Error]bool{}
	uniq := out[:0]
	for _, e := range out {
		e.Path, e.Msg = oneLine(e.Path), oneLine(e.Msg)
		if !seen[e] {
			seen[e] = true
			uniq = append(uniq, e)
		}
	}
	return uniq
}

// oneLine escapes line breaks that user input (a quoted key, a value echoed
// by yaml.v3) can bring into a message, keeping one line per problem.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
