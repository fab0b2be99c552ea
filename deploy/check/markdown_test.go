package check

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// mdDoc is what the documentation checks read of a Markdown file: its prose (fenced code
// blocks blanked out, line numbers kept), its headings and the anchors they make.
type mdDoc struct {
	prose    []string // the file's lines, those of fenced code blocks blank
	headings []mdHeading
	anchors  map[string]bool // GitHub's heading ids and explicit HTML ids
}

type mdHeading struct {
	line  int // 1-based
	level int
	text  string // as written, inline markup included
	slug  string // GitHub's id for it, made unique within the file
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	fenceOpen  = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	htmlID     = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:id|name)="([^"]+)"`)
)

// parseMarkdown reads the structure the checks need from a CommonMark/GitHub document.
func parseMarkdown(src string) mdDoc {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	d := mdDoc{prose: make([]string, len(lines)), anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	for i, l := range lines {
		if fence != "" {
			if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if m := fenceOpen.FindStringSubmatch(l); m != nil {
			fence = m[1]
			continue
		}
		d.prose[i] = l
		for _, m := range htmlID.FindAllStringSubmatch(l, -1) {
			d.anchors[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := seen[slug]; n > 0 {
			seen[slug] = n + 1
			slug += "-" + strconv.Itoa(n)
		} else {
			seen[slug] = 1
		}
		d.anchors[slug] = true
		d.headings = append(d.headings, mdHeading{line: i + 1, level: len(m[1]), text: m[2], slug: slug})
	}
	return d
}

var (
	mdLinkOrImage = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	mdRefDef      = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	htmlTag       = regexp.MustCompile(`<[^>]+>`)
)

// githubSlug is the id GitHub gives a heading: its text without markup, lower-cased,
// every character but letters, digits, '-', '_' and spaces dropped, spaces made '-'.
func githubSlug(heading string) string {
	text := mdLinkOrImage.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdLink is one link target written in a document.
type mdLink struct {
	line   int
	target string
}

// links returns the targets of the document's links and images (inline, reference
// definitions and HTML href/src), outside code.
func (d mdDoc) links() []mdLink {
	var out []mdLink
	for _, p := range d.paragraphs() {
		text, _ := splitCodeSpans(p.text)
		for _, loc := range mdLinkOrImage.FindAllStringSubmatchIndex(text, -1) {
			target := strings.Trim(text[loc[4]:loc[5]], "<>")
			out = append(out, mdLink{line: p.line + strings.Count(text[:loc[0]], "\n"), target: target})
		}
		for i, l := range strings.Split(text, "\n") {
			if m := mdRefDef.FindStringSubmatch(l); m != nil {
				out = append(out, mdLink{line: p.line + i, target: strings.Trim(m[1], "<>")})
			}
			for _, m := range htmlHrefSrc.FindAllStringSubmatch(l, -1) {
				out = append(out, mdLink{line: p.line + i, target: m[1]})
			}
		}
	}
	return out
}

var htmlHrefSrc = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:href|src)="([^"]+)"`)

// mdParagraph is a run of non-blank prose lines: inline code may span its lines, never
// more.
type mdParagraph struct {
	line int // of its first line, 1-based
	text string
}

func (d mdDoc) paragraphs() []mdParagraph {
	var out []mdParagraph
	var cur []string
	start := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, mdParagraph{line: start, text: strings.Join(cur, "\n")})
			cur = nil
		}
	}
	for i, l := range d.prose {
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if len(cur) == 0 {
			start = i + 1
		}
		cur = append(cur, l)
	}
	flush()
	return out
}

// splitCodeSpans returns text with its code spans blanked (each replaced by spaces, so
// offsets and line breaks stay), and the content of the spans, white space collapsed.
func splitCodeSpans(text string) (string, []string) {
	b := []byte(text)
	var spans []string
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			m := 0
			for j+m < len(b) && b[j+m] == '`' {
				m++
			}
			if m == n {
				end = j
				break
			}
			j += m
		}
		if end < 0 { // an unmatched run is literal text
			i += n
			continue
		}
		spans = append(spans, strings.Join(strings.Fields(string(b[i+n:end])), " "))
		for k := i; k < end+n; k++ {
			if b[k] != '\n' {
				b[k] = ' '
			}
		}
		i = end + n
	}
	return string(b), spans
}
