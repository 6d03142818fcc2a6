package nginx

import (
	"fmt"
	"strings"
)

// directive is one NGINX directive as NGINX's configuration reader splits
// it: its words with quotes and escapes resolved, its depth of blocks, and
// whether it opens a block.
type directive struct {
	depth int
	words []string
	block bool
}

// parseConf reads an NGINX configuration the way ngx_conf_read_token does
// (whitespace, ; { }, # comments, single and double quotes with \" \' \\
// \t \r \n, backslash escapes outside quotes, ${var} inside a word), so
// tests can see what NGINX would see in a rendered file.
func parseConf(text string) ([]directive, error) {
	var out []directive
	var words []string
	depth := 0
	i := 0
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for i < len(text) {
		c := text[i]
		switch {
		case isSpace(c):
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == ';':
			if len(words) == 0 {
				return nil, fmt.Errorf("unexpected ; at %d", i)
			}
			out = append(out, directive{depth: depth, words: words})
			words = nil
			i++
		case c == '{':
			if len(words) == 0 {
				return nil, fmt.Errorf("unexpected { at %d", i)
			}
			out = append(out, directive{depth: depth, words: words, block: true})
			words = nil
			depth++
			i++
		case c == '}':
			if len(words) != 0 {
				return nil, fmt.Errorf("unexpected } at %d after %q", i, words)
			}
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced } at %d", i)
			}
			depth--
			i++
		case c == '"' || c == '\'':
			q := c
			i++
			var w strings.Builder
			for {
				if i >= len(text) {
					return nil, fmt.Errorf("unterminated string")
				}
				if text[i] == '\\' && i+1 < len(text) {
					switch text[i+1] {
					case '"', '\'', '\\':
						w.WriteByte(text[i+1])
						i += 2
						continue
					case 't':
						w.WriteByte('\t')
						i += 2
						continue
					case 'r':
						w.WriteByte('\r')
						i += 2
						continue
					case 'n':
						w.WriteByte('\n')
						i += 2
						continue
					}
				}
				if text[i] == q {
					i++
					break
				}
				w.WriteByte(text[i])
				i++
			}
			if i < len(text) && !isSpace(text[i]) && text[i] != ';' && text[i] != '{' {
				return nil, fmt.Errorf("unexpected %q after a quoted string at %d", text[i], i)
			}
			words = append(words, w.String())
		default:
			var w strings.Builder
			variable := false
			for i < len(text) {
				c := text[i]
				if c == '{' && variable {
					w.WriteByte(c)
					i++
					continue
				}
				variable = false
				if isSpace(c) || c == ';' || c == '{' {
					break
				}
				if c == '\\' && i+1 < len(text) {
					w.WriteByte(text[i+1])
					i += 2
					continue
				}
				if c == '$' {
					variable = true
				}
				w.WriteByte(c)
				i++
			}
			words = append(words, w.String())
		}
	}
	if len(words) != 0 {
		return nil, fmt.Errorf("unexpected end of file after %q", words)
	}
	if depth != 0 {
		return nil, fmt.Errorf("unexpected end of file: %d blocks open", depth)
	}
	return out, nil
}

// skeleton is the shape of a configuration: each directive's depth, name
// (or, inside map and split_clients, only that it is an entry) and word
// count. Two renders of Desireds of one shape must have one skeleton, or a
// value has changed the structure.
func skeleton(ds []directive) []string {
	var out []string
	var parents []string
	for _, d := range ds {
		parents = parents[:min(len(parents), d.depth)]
		name := d.words[0]
		if len(parents) > 0 && (parents[len(parents)-1] == "map" || parents[len(parents)-1] == "split_clients") {
			name = "(entry)"
		}
		out = append(out, fmt.Sprintf("%d %s %d %t", d.depth, name, len(d.words), d.block))
		if d.block {
			parents = append(parents, d.words[0])
		}
	}
	return out
}
