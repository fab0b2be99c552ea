package catalog

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
}

func newSearchSQL(terms []string, limit int, site string) *searchSQL {
	q := &searchSQL{terms: terms, args: []any{limit}, placed: map[[2]int]string{}}
	if site != "" {
		q.args = append(q.args, site)
		q.site = "$2"
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

// position is where the first term occurs in f (NULL when none does).
func (q *searchSQL) position(f string) string {
	parts := make([]string, len(q.terms))
	for i := range parts {
		parts[i] = fmt.Sprintf("NULLIF(strpos(lower(%s), lower(%s)), 0)", f, q.param(i, formTerm))
	}
	return "LEAST(" + strings.Join(parts, ", ") + ")"
}

const hitColumns = `type, match, site, book_id, name, author, chapter_num, title, url, score, snippet`

func (q *searchSQL) books() string {
	return `(SELECT 'book' AS type, CASE WHEN s.name >= s.author THEN 'name' ELSE 'author' END AS match,
			b.site, b.id AS book_id, b.name, b.author, NULL::int AS chapter_num, NULL::text AS title, b.source_url AS url,
			GREATEST(s.name, 0.9 * s.author) AS score, NULL::text AS snippet
		FROM books b, LATERAL (SELECT ` + q.score("b.name") + ` AS name, ` + q.score("b.author") + ` AS author) s
		WHERE b.checked_at IS NOT NULL` + q.inSite("b.site") + ` AND (` + q.matches("b.name", true) + ` OR ` + q.matches("b.author", true) + `)
		ORDER BY score DESC, b.site, b.id LIMIT $1)`
}

func (q *searchSQL) titles() string {
	return `(SELECT 'chapter' AS type, 'title' AS match, c.site, c.book_id, COALESCE(b.name, '') AS name,
			COALESCE(b.author, '') AS author, c.num AS chapter_num, c.title, c.url,
			0.8 * ` + q.score("c.title") + ` AS score, NULL::text AS snippet
		FROM chapters c LEFT JOIN books b ON b.site = c.site AND b.id = c.book_id
		WHERE ` + q.matches("c.title", true) + q.inSite("c.site") + `
		ORDER BY score DESC, c.site, c.book_id, c.num LIMIT $1)`
}

func (q *searchSQL) content() string {
	return `(SELECT 'chapter' AS type, 'content' AS match, c.site, c.book_id, COALESCE(b.name, '') AS name,
			COALESCE(b.author, '') AS author, c.num AS chapter_num, c.title, c.url, 0.5 AS score,
			translate(substr(c.text, GREATEST(COALESCE(` + q.position("c.text") + `, 1) - 30, 1), 100), E'\n\r\t', '   ') AS snippet
		FROM chapters c LEFT JOIN books b ON b.site = c.site AND b.id = c.book_id
		WHERE c.text IS NOT NULL AND ` + q.matches("c.text", false) + q.inSite("c.site") + `
		ORDER BY c.site, c.book_id, c.num LIMIT $1)`
}

// Search runs a search in Postgres (the trigram indexes of migrations 00005 and 00006)
// and returns the hits, best first.
func (c *Catalog) Search(ctx context.Context, s Search) ([]Hit, error) {
	if len(s.Terms) == 0 || len(s.Terms) > MaxSearchTerms || s.Limit < 1 || s.In == 0 {
		return nil, fmt.Errorf("search %q in %b, limit %d: bad search", s.Terms, s.In, s.Limit)
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
	rows, err := c.pool.Query(ctx, sql, q.args...)
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
