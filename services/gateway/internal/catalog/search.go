package catalog

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// What a search looks at.
const (
	SearchBooks   = 1 << iota // book names and authors
	SearchTitles              // chapter titles
	SearchContent             // chapter texts
)

// MaxSearchTerms bounds the forms of one query searched at once.
const MaxSearchTerms = 4

// Bounds of a short search: one whose terms include one shorter than a trigram (one or
// two characters). Such a term has no trigram of its own inside a word, so '%x%' cannot
// use the trigram indexes and would read whole tables, every chapter text included.
// Instead, each branch of a short search reads
//   - at most ShortCandidates rows whose field starts with a term, or holds it at the
//     start of a space-separated word ('x%', '% x%'): the trigram index finds them by
//     their word-start trigrams ("  x", " xy"), or, when they are many, a scan that stops
//     at ShortCandidates (book names and authors, chapter titles; not texts, see
//     content); and
//   - the first ShortWindow rows of its table in primary-key order (ShortTextWindow
//     chapters for texts, which are long), an index range scan, among which a term is
//     looked for anywhere.
//
// What Postgres reads is thus bounded whatever the size of the tables
// (TestShortSearchBounded); the price is that a match inside a word, beyond the window,
// is not found: three characters find it.
const (
	ShortTermRunes  = 3 // a term with fewer runes is short
	ShortCandidates = 500
	ShortWindow     = 2000
	ShortTextWindow = 200
)

// isShort reports whether term is shorter than a trigram.
func isShort(term string) bool { return utf8.RuneCountInString(term) < ShortTermRunes }

// hasWordRune reports whether term holds a letter or a digit, which pg_trgm makes
// trigrams of: only then can the trigram index find what starts with it.
func hasWordRune(term string) bool {
	return strings.ContainsFunc(term, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
}

// Search is one search over what is stored.
type Search struct {
	// Terms are the forms of the query to match (the query as typed, then its
	// Traditional forms), 1 to MaxSearchTerms of them, none empty.
	Terms []string
	// In is a combination of SearchBooks, SearchTitles and SearchContent.
	In int
	// Limit bounds the hits (1 or more).
	Limit int
	// Site restricts the search to one site's books; "" searches every site.
	Site string
}

// Hit is one search result.
type Hit struct {
	// Type is "book" or "chapter".
	Type string
	// Match names the field that matched best: name or author for a book, title or
	// content for a chapter.
	Match      string
	Site       string
	BookID     string
	Name       string
	Author     string
	ChapterNum *int
	Title      *string
	URL        string
	// Score ranks the hits, higher first: 3 for an exact match, 2 and more for a match at
	// the start, 1 and more for a match inside, below 1 for a fuzzy (trigram word
	// similarity) match; authors weigh 0.9 of a name, chapter titles 0.8, texts 0.5.
	Score float64
	// Snippet is the text around the first match, for content hits.
	Snippet *string
}

// escapeLike quotes the LIKE wildcards of s (backslash is LIKE's default escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// searchSQL builds the statement of a search from fixed fragments; the terms travel as
// parameters, numbered as the fragments first use them ($1 is the limit, $2 the site
// when one is searched).
type searchSQL struct {
	terms  []string
	args   []any
	placed map[[2]int]string // (term, form) -> placeholder
	site   string            // the placeholder of the site searched, "" for every site
	short  bool              // a term is shorter than a trigram: a bounded search
}

func newSearchSQL(terms []string, limit int, site string) *searchSQL {
	q := &searchSQL{terms: terms, args: []any{limit}, placed: map[[2]int]string{}}
	if site != "" {
		q.args = append(q.args, site)
		q.site = "$2"
	}
	for _, t := range terms {
		q.short = q.short || isShort(t)
	}
	return q
}

// inSite restricts a branch to the site searched, by the site column col.
func (q *searchSQL) inSite(col string) string {
	if q.site == "" {
		return ""
	}
	return " AND " + col + " = " + q.site
}

// Forms of a term as a parameter.
const (
	formTerm     = iota // the term itself
	formContains        // %term%, wildcards escaped
	formPrefix          // term%, wildcards escaped
	formWord            // % term%: at the start of a word after a space, wildcards escaped
)

// param returns the placeholder of term i in the given form.
func (q *searchSQL) param(i, form int) string {
	if p, ok := q.placed[[2]int{i, form}]; ok {
		return p
	}
	v := q.terms[i]
	switch form {
	case formContains:
		v = "%" + escapeLike(v) + "%"
	case formPrefix:
		v = escapeLike(v) + "%"
	case formWord:
		v = "% " + escapeLike(v) + "%"
	}
	q.args = append(q.args, v)
	p := "$" + strconv.Itoa(len(q.args))
	q.placed[[2]int{i, form}] = p
	return p
}

// score ranks field f against every term and keeps the best.
func (q *searchSQL) score(f string) string {
	parts := make([]string, len(q.terms))
	for i := range parts {
		term, contains, prefix := q.param(i, formTerm), q.param(i, formContains), q.param(i, formPrefix)
		parts[i] = fmt.Sprintf(`CASE WHEN lower(%[1]s) = lower(%[2]s) THEN 3.0
			WHEN %[1]s ILIKE %[4]s THEN 2.0 + public.similarity(%[1]s, %[2]s)
			WHEN %[1]s ILIKE %[3]s THEN 1.0 + public.similarity(%[1]s, %[2]s)
			ELSE public.word_similarity(%[2]s, %[1]s) END`, f, term, contains, prefix)
	}
	return "GREATEST(" + strings.Join(parts, ", ") + ")"
}

// matches is true when field f contains a term, or a term is similar to a word of f
// (pg_trgm's <% operator, pg_trgm.word_similarity_threshold): both use f's trigram index.
func (q *searchSQL) matches(f string, fuzzy bool) string {
	var parts []string
	for i := range q.terms {
		contains := q.param(i, formContains)
		parts = append(parts, fmt.Sprintf("%s ILIKE %s", f, contains))
		if fuzzy {
			parts = append(parts, fmt.Sprintf("%s OPERATOR(public.<%%) %s", q.param(i, formTerm), f))
		}
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// contains is true when field f contains a term (no index helps a short term).
func (q *searchSQL) contains(f string) string {
	parts := make([]string, len(q.terms))
	for i := range parts {
		parts[i] = fmt.Sprintf("%s ILIKE %s", f, q.param(i, formContains))
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// starts is true when field f starts with a term or holds it at the start of a word
// after a space; both patterns use f's trigram index through the word-start trigrams. It
// is "" when no term holds a letter or digit (the index could not help).
func (q *searchSQL) starts(f string) string {
	var parts []string
	for i, t := range q.terms {
		if hasWordRune(t) {
			parts = append(parts, fmt.Sprintf("%s ILIKE %s OR %s ILIKE %s", f, q.param(i, formPrefix), f, q.param(i, formWord)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// where joins the conditions that are not "".
func where(conds ...string) string {
	var out []string
	for _, c := range conds {
		if c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(out, " AND ")
}

// siteCond is the condition restricting the unqualified column site to the site searched, or "".
func (q *searchSQL) siteCond() string {
	if q.site == "" {
		return ""
	}
	return "site = " + q.site
}

// bounded selects the columns cols of the rows of table that a short search looks at
// (see ShortCandidates): at most ShortCandidates rows passing filter whose fields start
// with a term (withIndex: the fields have trigram indexes), and the rows among the first
// window rows of table in key order (its primary key) passing filter whose fields contain
// a term.
func (q *searchSQL) bounded(table, key, cols, filter string, fields []string, withIndex bool, window int) string {
	var starts, contains []string
	for _, f := range fields {
		if !withIndex {
			break
		}
		if s := q.starts(f); s != "" {
			starts = append(starts, s)
		}
	}
	for _, f := range fields {
		contains = append(contains, q.contains("w."+f))
	}
	windowed := `(SELECT ` + cols + ` FROM (SELECT * FROM ` + table + where(q.siteCond()) + ` ORDER BY ` + key +
		` LIMIT ` + strconv.Itoa(window) + `) w` + where(filter, "("+strings.Join(contains, " OR ")+")") + `)`
	if len(starts) == 0 {
		return windowed
	}
	return `(SELECT ` + cols + ` FROM ` + table + where(filter, q.siteCond(), "("+strings.Join(starts, " OR ")+")") +
		` LIMIT ` + strconv.Itoa(ShortCandidates) + `) UNION ` + windowed
}

// position is where the first term occurs in f (NULL when none does).
func (q *searchSQL) position(f string) string {
	parts := make([]string, len(q.terms))
	for i := range parts {
		parts[i] = fmt.Sprintf("NULLIF(strpos(lower(%s), lower(%s)), 0)", f, q.param(i, formTerm))
	}
	return "LEAST(" + strings.Join(parts, ", ") + ")"
}

const hitColumns = `type, match, site, book_id, name, author, chapter_num, title, url, score, snippet`

// books is the branch of book names and authors. A short search looks only at the rows
// bounded selects.
func (q *searchSQL) books() string {
	from := `books b`
	var cond string
	if q.short {
		from = `(` + q.bounded("books", "site, id", "site, id, name, author, source_url", "checked_at IS NOT NULL",
			[]string{"name", "author"}, true, ShortWindow) + `) b`
		cond = `true`
	} else {
		cond = `b.checked_at IS NOT NULL` + q.inSite("b.site") + ` AND (` + q.matches("b.name", true) + ` OR ` + q.matches("b.author", true) + `)`
	}
	return `(SELECT 'book' AS type, CASE WHEN s.name >= s.author THEN 'name' ELSE 'author' END AS match,
			b.site, b.id AS book_id, b.name, b.author, NULL::int AS chapter_num, NULL::text AS title, b.source_url AS url,
			GREATEST(s.name, 0.9 * s.author) AS score, NULL::text AS snippet
		FROM ` + from + `, LATERAL (SELECT ` + q.score("b.name") + ` AS name, ` + q.score("b.author") + ` AS author) s
		WHERE ` + cond + `
		ORDER BY score DESC, b.site, b.id LIMIT $1)`
}

// chapters returns what a chapter branch reads, as c, and its condition: every chapter
// passing cond(), or for a short search the chapters bounded selects. (Placeholders are
// numbered as the SQL is built: a fragment not used must not be built.)
func (q *searchSQL) chapters(cond func() string, filter, field string, withIndex bool, window int) (string, string) {
	if !q.short {
		return `chapters c`, cond()
	}
	cols := "site, book_id, num, title, url"
	if field != "title" {
		cols += ", " + field
	}
	return `(` + q.bounded("chapters", "site, book_id, num", cols, filter, []string{field}, withIndex, window) + `) c`, `true`
}

// withBooks names the book of each chapter hit that hits (site, book_id, num, title, url,
// score, snippet) chose: at most the search's limit of them, each looked up by its key.
func withBooks(match, hits string) string {
	return `(SELECT 'chapter' AS type, '` + match + `' AS match, h.site, h.book_id, COALESCE(b.name, '') AS name,
			COALESCE(b.author, '') AS author, h.num AS chapter_num, h.title, h.url, h.score, h.snippet
		FROM (` + hits + `) h LEFT JOIN books b ON b.site = h.site AND b.id = h.book_id)`
}

func (q *searchSQL) titles() string {
	from, cond := q.chapters(func() string { return q.matches("c.title", true) + q.inSite("c.site") }, "", "title", true, ShortWindow)
	return withBooks("title", `SELECT c.site, c.book_id, c.num, c.title, c.url, 0.8 * `+q.score("c.title")+` AS score, NULL::text AS snippet
		FROM `+from+`
		WHERE `+cond+`
		ORDER BY score DESC, c.site, c.book_id, c.num LIMIT $1`)
}

// content is the branch of chapter texts. A short search looks for its terms in the
// texts of the window only: in prose, words follow punctuation rather than spaces, so the
// word-start patterns would read, and reject, every text holding a word that starts with
// the term.
func (q *searchSQL) content() string {
	from, cond := q.chapters(func() string { return `c.text IS NOT NULL AND ` + q.matches("c.text", false) + q.inSite("c.site") },
		"text IS NOT NULL", "text", false, ShortTextWindow)
	return withBooks("content", `SELECT c.site, c.book_id, c.num, c.title, c.url, 0.5 AS score,
			translate(substr(c.text, GREATEST(COALESCE(`+q.position("c.text")+`, 1) - 30, 1), 100), E'\n\r\t', '   ') AS snippet
		FROM `+from+`
		WHERE `+cond+`
		ORDER BY c.site, c.book_id, c.num LIMIT $1`)
}

// Search runs a search in Postgres (the trigram indexes of migrations 00005 and 00006)
// and returns the hits, best first.
func (c *Catalog) Search(ctx context.Context, s Search) ([]Hit, error) {
	sql, args, err := s.statement()
	if err != nil {
		return nil, err
	}
	rows, err := c.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", s.Terms[0], err)
	}
	hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var h Hit
		err := r.Scan(&h.Type, &h.Match, &h.Site, &h.BookID, &h.Name, &h.Author, &h.ChapterNum, &h.Title, &h.URL, &h.Score, &h.Snippet)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", s.Terms[0], err)
	}
	return hits, nil
}

// statement builds the SQL of the search and its arguments.
func (s Search) statement() (string, []any, error) {
	if len(s.Terms) == 0 || len(s.Terms) > MaxSearchTerms || s.Limit < 1 || s.In == 0 {
		return "", nil, fmt.Errorf("search %q in %b, limit %d: bad search", s.Terms, s.In, s.Limit)
	}
	q := newSearchSQL(s.Terms, s.Limit, s.Site)
	var branches []string
	if s.In&SearchBooks != 0 {
		branches = append(branches, q.books())
	}
	if s.In&SearchTitles != 0 {
		branches = append(branches, q.titles())
	}
	if s.In&SearchContent != 0 {
		branches = append(branches, q.content())
	}
	sql := `SELECT ` + hitColumns + ` FROM (` + strings.Join(branches, " UNION ALL ") + `) r
		ORDER BY score DESC, site, book_id, chapter_num NULLS FIRST LIMIT $1`
	return sql, q.args, nil
}
