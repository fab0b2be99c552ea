// Package sitesim is a simulated copy of a source site for tests, demos,
// chaos tests and benchmarks. Config.Site selects the flavour: m.xsw.tw
// (台灣小說網, mobile; SiteXSW, the default) or czbooks.net (小說狂人;
// SiteCzbooks).
//
// Both flavours render a deterministic, seeded catalogue of Traditional
// Chinese books with the markup that the site descriptions give
// (shared/SOURCE_SITE.md and shared/SOURCE_SITE_CZBOOKS.md). They were written
// from those descriptions alone, so that parsers can be tested against an
// independent rendering; the czbooks.net flavour never uses the fetcher's
// czbooks adapter.
//
// # m.xsw.tw
//
// Five page types: home (/), category listing (/fenlei{cat}_{page}.html,
// with descriptions; a page past the end is a normal page without books),
// book home (/{book}/), paginated table of contents (/{book}/page-{n}.html)
// and chapter (/{book}/{chapter}.html). Book ids are 7 digits, increasing;
// chapter ids 9 digits, unique across the site. Every page declares Big5
// (`<meta charset=big5>`, or the http-equiv form on listing pages) and, like
// the real site, is served with `Content-Type: text/html; charset=big5`,
// while the bytes are UTF-8. With Config.Big5 the bytes really are Big5.
//
// # czbooks.net
//
// Four page types:
//
//	/                        home: category links in ul.nav.menu li a
//	/c/{slug}, /c/{slug}/{n} category listing, page 1 and n >= 2
//	/n/{book}                book: metadata and the whole chapter list
//	/n/{book}/{chapter}      chapter: div.name and div.content in .chapter-detail
//
// Category ids are slugs (xuanhuan 玄幻, yanqing 言情, dushi 都市, xianxia
// 仙俠, lishi 歷史, kehuan 科幻, kongbu 恐怖). Book ids are opaque: mostly
// lowercase letters and digits (cr382b, s660jj), about one in ten seven digits
// with a leading zero (0481273). Chapter ids are opaque and unique within a
// book (crdic), about one in eight all digits with a leading zero. Ids only
// use [A-Za-z0-9].
//
// Links name czbooks.net, never the simulator's address: mostly
// protocol-relative (//czbooks.net/n/…), some root-relative (/c/…) or
// absolute (https://czbooks.net/…). A client maps them onto its base URL.
// Pages are UTF-8, declared by `<meta charset="utf-8">` and
// `Content-Type: text/html; charset=utf-8`; with Config.Big5 they are Big5
// and declare it.
//
// Choices where the description is silent:
//
//   - Every page has the header menu (ul.nav.menu, every category,
//     protocol-relative links with padded text), a mobile drawer
//     (ul.nav.menu.mobile-menu, root-relative links) and a footer
//     (ul.nav.menu.footer-menu, the first three categories, absolute links):
//     category links repeat. The header menu also links 首頁 and 排行榜.
//   - Listing pages show li.novel-item-wrapper items in catalogue order and a
//     ul.pagination block. /c/{slug}/1 is 404 (page 1 is /c/{slug} only),
//     as is any page past the last one and a page number with leading zeros.
//     One book in five has no .novel-item-status block.
//   - The book page's .state table holds two label/value pairs a row:
//     狀 態, 更新時間 (YYYY-MM-DD, Taiwan time), 收 藏 數, 觀　看　數
//     (U+3000 spaces) and 分 類 with a#novel-category (href /c/{slug}).
//     Finished books say 已完成, 完結 or 已完結.
//   - One book in five has no volume headers; the others split their
//     chapters into volumes of 15 to 64 (第一卷 NAME, …), and chapters added
//     later join the last volume. In one book in three every li.volume wraps
//     a link to its first chapter; in another third an ad li without a link
//     follows the tenth chapter. Chapter links mix the three forms.
//   - Chapter text is in <p> (indented with U+3000) or in <br>-separated lines
//     (indented with NBSP, or with U+3000 and a trailing NBSP), with a div.ad,
//     an ins and a script inside div.content and a line naming czbooks.net.
//     Previous/next links sit in div.chapter-nav blocks outside div.content;
//     at either end they lead to the book page.
//   - Validators (Config.Validators) apply to book pages only, as there are
//     no table of contents pages.
//
// # Both flavours
//
// Besides the site itself a Site keeps a request log (for politeness checks),
// lets books grow new chapters, can answer with validators (ETag,
// Last-Modified, 304), and can inject faults: 429 with Retry-After, 500, 503,
// connection resets, hangs, truncated pages, pages without the expected
// elements, redirects to another host, 404 for everything, and a Cloudflare
// refusal (403, cf-mitigated: challenge, "Just a moment...").
//
// Control and inspection endpoints live under /_sim/, outside the site's
// namespace:
//
//	GET    /_sim/health                 "ok"
//	GET    /_sim/requests[?prefix=P]    request log (JSON array of Request)
//	DELETE /_sim/requests               clear the request log (also POST /_sim/reset)
//	GET    /_sim/stats[?window=1s]      Stats (JSON)
//	GET    /_sim/categories             the categories (JSON array of Category)
//	GET    /_sim/books[?chapters=1]     ground truth for every book (JSON array of BookInfo)
//	GET    /_sim/books/{id}             one book with its chapters in reading order
//	POST   /_sim/books/{id}/grow?n=3    add n chapters to a book, returns the BookInfo
//	POST   /_sim/books/{id}/cut?keep=2  list only a book's first keep chapters, returns the BookInfo
//	GET    /_sim/faults                 current fault rules and their counters
//	POST   /_sim/faults[?append=1]      replace (or extend) the rules: JSON array of FaultRule
//	DELETE /_sim/faults                 remove every fault rule
//
// Requests under /_sim/ are neither logged, delayed nor subject to faults.
package sitesim
