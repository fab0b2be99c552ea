package sitesim

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// taipei is Taiwan time (UTC+8), the zone of the 更新 line.
var taipei = time.FixedZone("CST", 8*60*60)

// epoch is the latest initial update time of a book; earlier ones go back
// about a year from here.
var epoch = time.Date(2025, time.June, 1, 12, 0, 0, 0, taipei)

// Stream ids for the seeded generators, so that each use draws its own
// sequence.
const (
	streamCatalogue = 0x5eed_0001
	streamFaults    = 0x5eed_0002
	streamText      = 0x5eed_0003
	streamBook      = 1 << 40
)

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// chapter is one chapter of a book: the title and ids are fixed, the text is
// generated on demand from the seed and the chapter id.
type chapter struct {
	id    string
	title string
}

// book is the mutable state of one book. Site.mu guards it.
type book struct {
	index    int // position in the catalogue
	id       string
	name     string
	author   string
	hero     string
	category int
	intro    string
	finished bool
	updated  time.Time
	chapters []chapter
	byID     map[string]int // chapter id -> position
	listPos  int            // position in its category listing
	rng      *rand.Rand     // draws ids and titles of future chapters
	titleNum int            // the number in the newest numbered chapter title
}

// catalogue is the generated site: books by id, per category, and the set of
// chapter ids in use (chapter ids are unique across the site).
type catalogue struct {
	books      []*book
	byID       map[string]*book
	byCategory [][]*book // index = category id
	chapterIDs map[int]struct{}
	seed       int64
}

// BookIDs returns the book ids that New(cfg) assigns, in catalogue order. Use
// it to choose keys for Config.BigBooks before building the site.
func BookIDs(cfg Config) []string {
	ids, _ := planBooks(cfg.withDefaults())
	return ids
}

// planBooks draws the book ids (7-digit, increasing with irregular steps from
// about 1000001) and a category for each book, every category getting
// BooksPerCategory books. cfg must have its defaults applied.
func planBooks(cfg Config) (ids []string, cats []int) {
	rng := newRand(cfg.Seed, streamCatalogue)
	total := cfg.Categories * cfg.BooksPerCategory
	cats = make([]int, 0, total)
	for c := 1; c <= cfg.Categories; c++ {
		for range cfg.BooksPerCategory {
			cats = append(cats, c)
		}
	}
	rng.Shuffle(len(cats), func(i, j int) { cats[i], cats[j] = cats[j], cats[i] })

	next := 1_000_001 + rng.IntN(1000)
	maxStep := min(max((9_999_999-next)/max(total, 1), 1), 97)
	ids = make([]string, total)
	for i := range ids {
		ids[i] = strconv.Itoa(next)
		next += 1 + rng.IntN(maxStep)
	}
	return ids, cats
}

// generate builds the catalogue of cfg (defaults applied).
func generate(cfg Config) *catalogue {
	ids, cats := planBooks(cfg)
	c := &catalogue{
		books:      make([]*book, len(ids)),
		byID:       make(map[string]*book, len(ids)),
		byCategory: make([][]*book, cfg.Categories+1),
		chapterIDs: make(map[int]struct{}),
		seed:       cfg.Seed,
	}
	names := make(map[string]bool, len(ids))
	for i, id := range ids {
		rng := newRand(cfg.Seed, streamBook+uint64(i))
		b := &book{
			index:    i,
			id:       id,
			category: cats[i],
			rng:      rng,
		}
		b.name = uniqueName(rng, names)
		b.author = pick(rng, surnames) + pick(rng, givenNames)
		b.hero = pick(rng, surnames) + pick(rng, givenNames)
		b.intro = makeIntro(rng, b.hero)
		b.finished = rng.Float64() < cfg.FinishedRatio
		age := time.Duration(rng.IntN(365*24*60*60)) * time.Second
		if b.finished {
			age += 180 * 24 * time.Hour
		}
		b.updated = epoch.Add(-age)

		n := cfg.MinChapters + rng.IntN(cfg.MaxChapters-cfg.MinChapters+1)
		if big, ok := cfg.BigBooks[id]; ok {
			n = min(max(big, 0), maxChaptersPerBook)
		}
		b.chapters = make([]chapter, 0, n)
		b.byID = make(map[string]int, n)
		c.addChapters(b, n)

		b.listPos = len(c.byCategory[b.category])
		c.byCategory[b.category] = append(c.byCategory[b.category], b)
		c.books[i] = b
		c.byID[id] = b
	}
	return c
}

func pick(rng *rand.Rand, list []string) string {
	return list[rng.IntN(len(list))]
}

// uniqueName draws a book name not used yet; once the word lists run out it
// adds a number.
func uniqueName(rng *rand.Rand, used map[string]bool) string {
	var name string
	for range 8 {
		name = pick(rng, titlePrefixes) + pick(rng, titleSuffixes)
		if !used[name] {
			used[name] = true
			return name
		}
	}
	for k := 2; ; k++ {
		n := name + strconv.Itoa(k)
		if !used[n] {
			used[n] = true
			return n
		}
	}
}

func makeIntro(rng *rand.Rand, hero string) string {
	n := 2 + rng.IntN(3)
	var b strings.Builder
	for _, i := range rng.Perm(len(introSentences))[:n] {
		b.WriteString(strings.ReplaceAll(introSentences[i], "{hero}", hero))
	}
	return b.String()
}

// addChapters appends n chapters to b, drawing ids and titles from b's
// generator. The caller holds the write lock (or owns c during generate).
func (c *catalogue) addChapters(b *book, n int) {
	for range n {
		id := c.newChapterID(b.rng)
		b.byID[id] = len(b.chapters)
		b.chapters = append(b.chapters, chapter{id: id, title: b.nextTitle()})
	}
}

// newChapterID draws an unused 9-digit chapter id. Ids are random, so they say
// nothing about a chapter's position.
func (c *catalogue) newChapterID(rng *rand.Rand) string {
	for {
		n := 100_000_000 + rng.IntN(900_000_000)
		if _, used := c.chapterIDs[n]; !used {
			c.chapterIDs[n] = struct{}{}
			return strconv.Itoa(n)
		}
	}
}

// nextTitle makes the title of the next chapter: mostly 第N章 NAME, but like
// real books it sometimes skips or repeats a number, drops the number, writes
// it in Chinese or full-width numerals, or varies the separator.
func (b *book) nextTitle() string {
	rng := b.rng
	name := pick(rng, chapterVerbs) + pick(rng, chapterNouns)
	first := len(b.chapters) == 0
	r := rng.Float64()
	switch {
	case first && r < 0.15:
		return []string{"楔子", "序章", "引子"}[rng.IntN(3)]
	case !first && r < 0.02:
		return pick(rng, specialTitles)
	case !first && r < 0.04 && b.titleNum > 0:
		// The same number again: a chapter in two parts.
		name += "（下）"
	case r < 0.06:
		b.titleNum += 2 + rng.IntN(2) // skipped numbers
	default:
		b.titleNum++
	}

	var num string
	switch r := rng.Float64(); {
	case r < 0.04:
		num = chineseNumber(b.titleNum, numeralPlain)
	case r < 0.06:
		num = chineseNumber(b.titleNum, numeralLiang)
	case r < 0.07:
		num = chineseNumber(b.titleNum, numeralFinancial)
	case r < 0.08:
		num = fullWidthDigits(strconv.Itoa(b.titleNum))
	default:
		num = strconv.Itoa(b.titleNum)
	}
	sep := " "
	switch r := rng.Float64(); {
	case r < 0.05:
		sep = ""
	case r < 0.08:
		sep = "："
	case r < 0.10:
		sep = "　"
	}
	return "第" + num + "章" + sep + name
}

// chapterText generates the paragraphs of a chapter from the seed and the
// chapter id.
func chapterText(seed int64, chapterID, hero string) []string {
	id, _ := strconv.ParseUint(chapterID, 10, 64)
	rng := newRand(seed, streamText^id<<8)
	paras := make([]string, 6+rng.IntN(7))
	for i := range paras {
		var b strings.Builder
		for range 2 + rng.IntN(3) {
			b.WriteString(pick(rng, textSentences))
		}
		paras[i] = strings.ReplaceAll(b.String(), "{hero}", hero)
	}
	return paras
}
