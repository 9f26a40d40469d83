package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// width is the number of columns human output fits in unless -o wide.
const width = 80

// ANSI colours, used only on terminals.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// escape makes text safe for a terminal: control characters (C0, DEL, C1),
// bidirectional overrides and invalid UTF-8, which fixtures, ELF section
// names and files can carry, are written as Go escapes (\x1b, \u202e).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// columns is the display width of s (one column per rune: the output is
// escaped and ASCII but for arrows, ellipses and text from files).
func columns(s string) int { return utf8.RuneCountInString(s) }

// truncate shortens s to at most w columns, ending it with "…".
func truncate(s string, w int) string {
	if w <= 0 || columns(s) <= w {
		return s
	}
	r := []rune(s)
	if w == 1 {
		return "…"
	}
	return strings.TrimRight(string(r[:w-1]), " ") + "…"
}

// elide shortens s to at most w columns by cutting its middle ("…"), for
// links and paths whose both ends matter.
func elide(s string, w int) string {
	if w <= 0 || columns(s) <= w {
		return s
	}
	r := []rune(s)
	if w < 5 {
		return truncate(s, w)
	}
	head := (w - 1) / 2
	tail := w - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// wrap folds text into lines of at most w columns, each starting with
// indent; a word longer than a line is elided to fit. w <= 0 means one
// line.
func wrap(text, indent string, w int) []string {
	words := strings.Fields(text)
	if w <= 0 {
		return []string{indent + strings.Join(words, " ")}
	}
	avail := w - columns(indent)
	var lines []string
	var cur strings.Builder
	for _, word := range words {
		word = elide(word, avail)
		if cur.Len() > 0 && columns(cur.String())+1+columns(word) > avail {
			lines = append(lines, indent+cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 || len(lines) == 0 {
		lines = append(lines, indent+cur.String())
	}
	return lines
}

// printer writes human output: every line is escaped, and fits the width
// unless wide is set.
type printer struct {
	w     io.Writer
	color bool
	wide  bool
	err   error
}

// limit is the width text must fit, or 0 for no limit.
func (p *printer) limit() int {
	if p.wide {
		return 0
	}
	return width
}

func (p *printer) write(s string) {
	if p.err == nil {
		_, p.err = io.WriteString(p.w, s)
	}
}

// line writes one line, escaped and, unless wide, truncated to the width.
func (p *printer) line(format string, args ...any) {
	s := escape(fmt.Sprintf(format, args...))
	if !p.wide {
		s = truncate(s, width)
	}
	p.write(s + "\n")
}

// blank writes an empty line.
func (p *printer) blank() { p.write("\n") }

// para writes text wrapped to the width, each line starting with indent.
func (p *printer) para(indent, text string) {
	for _, l := range wrap(escape(text), indent, p.limit()) {
		p.write(l + "\n")
	}
}

// hang writes text after head, wrapped, its further lines indented past
// head.
func (p *printer) hang(head, text string) {
	lines := wrap(escape(text), "", p.limit()-columns(head))
	for i, l := range lines {
		if i == 0 {
			p.write(head + l + "\n")
		} else {
			p.write(strings.Repeat(" ", columns(head)) + l + "\n")
		}
	}
}

// field writes "  name  value" with value wrapped under itself.
func (p *printer) field(name, value string) {
	p.hang(fmt.Sprintf("  %-17s ", name), value)
}

// paint colours s when colour is on.
func (p *printer) paint(color, s string) string {
	if !p.color || color == "" {
		return s
	}
	return color + s + reset
}

// cell is one table cell with an optional colour.
type cell struct {
	text  string
	color string
}

func plain(s string) cell { return cell{text: s} }

// table prints aligned columns. Unless wide, the columns marked flexible
// are truncated (widest first) until each line fits the width; colour
// codes are added after padding so they never break the alignment.
type table struct {
	header []string
	// flex marks columns that may be truncated; nil means the last one.
	flex []bool
	// wrap folds the last column onto further lines instead of truncating it.
	wrap bool
	rows [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func (t *table) write(p *printer, indent string) {
	n := len(t.header)
	widths := make([]int, n)
	for i, h := range t.header {
		widths[i] = columns(h)
	}
	rows := make([][]cell, len(t.rows))
	for r, row := range t.rows {
		rows[r] = make([]cell, n)
		for i := 0; i < n && i < len(row); i++ {
			rows[r][i] = cell{escape(row[i].text), row[i].color}
			widths[i] = max(widths[i], columns(rows[r][i].text))
		}
	}
	flex := t.flex
	if flex == nil {
		flex = make([]bool, n)
		flex[n-1] = true
	}
	if !p.wide {
		total := func() int {
			sum := columns(indent) + 2*(n-1)
			for _, w := range widths {
				sum += w
			}
			return sum
		}
		// Level the widest flexible columns down, one column at a time,
		// never below their header or 6 columns.
		for over := total() - width; over > 0; over-- {
			widest := -1
			for i := range widths {
				if flex[i] && widths[i] > max(6, columns(t.header[i])) && (widest < 0 || widths[i] > widths[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break
			}
			widths[widest]--
		}
	}
	line := func(cells []cell, head bool) {
		var b strings.Builder
		b.WriteString(indent)
		var more []string
		for i, c := range cells {
			text := c.text
			if !p.wide && t.wrap && i == n-1 && !head {
				lines := wrap(text, "", widths[i])
				text, more = lines[0], lines[1:]
			}
			if !p.wide {
				text = truncate(text, widths[i])
			}
			pad := ""
			if i < n-1 {
				pad = strings.Repeat(" ", widths[i]-columns(text)+2)
			}
			switch {
			case head:
				b.WriteString(p.paint(bold, text))
			default:
				b.WriteString(p.paint(c.color, text))
			}
			b.WriteString(pad)
		}
		p.write(strings.TrimRight(b.String(), " ") + "\n")
		if len(more) > 0 {
			lead := columns(indent) + 2*(n-1)
			for _, w := range widths[:n-1] {
				lead += w
			}
			for _, l := range more {
				p.write(strings.Repeat(" ", lead) + p.paint(cells[n-1].color, l) + "\n")
			}
		}
	}
	hc := make([]cell, n)
	for i, h := range t.header {
		hc[i] = plain(h)
	}
	line(hc, true)
	for _, r := range rows {
		line(r, false)
	}
}

// schemaVersion is the version of every --json document's shape: it
// changes when a field is removed or changes meaning, not when one is
// added.
const schemaVersion = 1

// writeJSON writes v, indented, as one document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// useColor reports whether w is a terminal and NO_COLOR is unset or empty
// (https://no-color.org).
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
