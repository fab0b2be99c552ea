// Package sitesim is a simulated copy of the source site m.xsw.tw (台灣小說網,
// mobile) for tests, demos and benchmarks.
//
// It renders the five page types of the real site (home, category listing, book
// home, paginated table of contents, chapter) from a deterministic, seeded
// catalogue of Traditional Chinese books, with the markup that public scrapers
// describe. It was written from the site description alone, so that parsers can
// be tested against an independent rendering.
//
// Besides the site itself a Site keeps a request log (for politeness checks),
// lets books grow new chapters, can answer with validators (ETag,
// Last-Modified, 304), and can inject faults: 429 with Retry-After, 500, 503,
// connection resets, hangs, truncated pages, pages without the expected
// elements, redirects to another host and 404 for everything.
//
// Control and inspection endpoints live under /_sim/, outside the site's
// namespace:
//
//	GET    /_sim/health                 "ok"
//	GET    /_sim/requests[?prefix=P]    request log (JSON array of Request)
//	DELETE /_sim/requests               clear the request log (also POST /_sim/reset)
//	GET    /_sim/stats[?window=1s]      Stats (JSON)
//	GET    /_sim/categories             the categories (JSON)
//	GET    /_sim/books[?chapters=1]     ground truth for every book (JSON array of BookInfo)
//	GET    /_sim/books/{id}             one book with its chapters in reading order
//	POST   /_sim/books/{id}/grow?n=3    add n chapters to a book, returns the BookInfo
//	GET    /_sim/faults                 current fault rules and their counters
//	POST   /_sim/faults[?append=1]      replace (or extend) the rules: JSON array of FaultRule
//	DELETE /_sim/faults                 remove every fault rule
//
// Requests under /_sim/ are neither logged, delayed nor subject to faults.
//
// Encoding: every page declares Big5 (`<meta charset=big5>`, or the
// http-equiv form on listing pages) and, like the real site, is served with the
// header `Content-Type: text/html; charset=big5` (Config.ContentType changes
// it), while the bytes are UTF-8. With Config.Big5 the bytes really are Big5.
package sitesim
