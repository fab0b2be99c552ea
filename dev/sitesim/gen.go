package sitesim

import (
	"fmt"
	"hash/fnv"
	"math"
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

// volume is a volume header of a czbooks.net chapter list.
type volume struct {
	title string
	first int // 0-based position of its first chapter
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

	// czbooks.net only.
	finishedWord     string   // the status word of a finished book
	bookmarks, views int      // the 收藏數 and 觀看數 counts
	volumes          []volume // in order; chapters before the first have none
}

// catalogue is the generated site: books by id, per category, and the set of
// chapter ids in use (on m.xsw.tw chapter ids are unique across the site; on
// czbooks.net only within a book).
type catalogue struct {
	site       string
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

// planBooks draws the book ids and a category for each book, every category
// getting BooksPerCategory books. m.xsw.tw ids are 7-digit, increasing with
// irregular steps from about 1000001; czbooks.net ids are opaque (see
// czbooksBookID). cfg must have its defaults applied.
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
	if cfg.Site == SiteCzbooks {
		return czbooksBookIDs(rng, total), cats
	}

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
		site:       cfg.Site,
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
		if cfg.Site == SiteCzbooks {
			b.finishedWord = pick(rng, finishedWords)
			b.bookmarks = int(math.Pow(10, 1+4.5*rng.Float64()))
			b.views = b.bookmarks * (20 + rng.IntN(180))
		}

		n := cfg.MinChapters + rng.IntN(cfg.MaxChapters-cfg.MinChapters+1)
		if big, ok := cfg.BigBooks[id]; ok {
			n = min(max(big, 0), maxChaptersPerBook)
		}
		b.chapters = make([]chapter, 0, n)
		b.byID = make(map[string]int, n)
		c.addChapters(b, n)
		if cfg.Site == SiteCzbooks {
			b.volumes = planVolumes(rng, n)
		}

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
		var id string
		if c.site == SiteCzbooks {
			id = czbooksChapterID(b)
		} else {
			id = c.newChapterID(b.rng)
		}
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

// textKey is the key of a chapter's text: the chapter id itself on m.xsw.tw,
// where it is a number unique across the site, and a hash of the book and
// chapter ids on czbooks.net.
func (c *catalogue) textKey(bookID, chapterID string) uint64 {
	if c.site == SiteCzbooks {
		h := fnv.New64a()
		_, _ = h.Write([]byte(bookID + "/" + chapterID)) // cannot fail
		return h.Sum64()
	}
	id, _ := strconv.ParseUint(chapterID, 10, 64)
	return id
}

// chapterText generates the paragraphs of a chapter from the seed and the
// chapter's text key.
func chapterText(seed int64, key uint64, hero string) []string {
	rng := newRand(seed, streamText^key<<8)
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

// czbooksBookIDs draws n distinct czbooks.net book ids.
func czbooksBookIDs(rng *rand.Rand, n int) []string {
	ids := make([]string, n)
	used := make(map[string]bool, n)
	for i := range ids {
		id := czbooksBookID(rng)
		for used[id] {
			id = czbooksBookID(rng)
		}
		used[id] = true
		ids[i] = id
	}
	return ids
}

// czbooksBookID draws an opaque book id: mostly 1-2 lowercase letters, 3
// digits and 1-2 letters (cr382b, s660jj), and about one in ten seven digits
// with a leading zero (0481273), which a client must keep as text.
func czbooksBookID(rng *rand.Rand) string {
	if rng.IntN(10) == 0 {
		return fmt.Sprintf("0%06d", rng.IntN(1_000_000))
	}
	b := appendLetters(nil, rng, 1+rng.IntN(2))
	b = fmt.Appendf(b, "%03d", rng.IntN(1000))
	return string(appendLetters(b, rng, 1+rng.IntN(2)))
}

func appendLetters(b []byte, rng *rand.Rand, n int) []byte {
	for range n {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	return b
}

// czbooksChapterID draws a chapter id not used in b yet: mostly 4 to 6
// lowercase letters and digits starting with a letter (crdic), about one in
// eight all digits with a leading zero (04817). Ids are random, so they say
// nothing about a chapter's position.
func czbooksChapterID(b *book) string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	rng := b.rng
	for {
		var id []byte
		if rng.IntN(8) == 0 {
			id = append(id, '0')
			for range 4 + rng.IntN(3) {
				id = append(id, byte('0'+rng.IntN(10)))
			}
		} else {
			id = appendLetters(id, rng, 1)
			for range 3 + rng.IntN(3) {
				if rng.IntN(5) == 0 {
					id = append(id, alnum[rng.IntN(len(alnum))])
				} else {
					id = appendLetters(id, rng, 1)
				}
			}
		}
		if _, used := b.byID[string(id)]; !used {
			return string(id)
		}
	}
}

// planVolumes splits n chapters into volumes of 15 to 64 chapters, titled
// 第一卷 NAME, 第二卷 NAME and so on. One book in five has no volumes, nor
// has a book without chapters. Chapters added later go to the last volume.
func planVolumes(rng *rand.Rand, n int) []volume {
	if n == 0 || rng.IntN(5) == 0 {
		return nil
	}
	var vols []volume
	for first := 0; first < n; first += 15 + rng.IntN(50) {
		num := chineseNumber(len(vols)+1, numeralPlain)
		vols = append(vols, volume{title: "第" + num + "卷 " + pick(rng, volumeNames), first: first})
	}
	return vols
}
